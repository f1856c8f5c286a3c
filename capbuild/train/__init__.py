"""The bundled contrastive trainer and evaluator (the `train` extra): capbuild shards in, a
`transformers.VisionTextDualEncoderModel` and the seeds' retrieval / zero-shot tables out.

The modules import torch and transformers; `capbuild.train.config` and `capbuild.train.commands`
do not, so the base CLI works without the extra.
"""

from __future__ import annotations

import importlib.util

from capbuild.errors import MissingExtraError

REQUIRED_MODULES = ("torch", "torchvision", "transformers", "timm")


def require_train_extra() -> None:
    """A MissingExtraError naming the install command when a package of the `train` extra is missing."""
    missing = [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise MissingExtraError(", ".join(missing), "train", "training and evaluation")
