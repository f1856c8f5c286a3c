"""open_clip dual encoders (`open_clip:ARCH:PRETRAINED`), an optional extra."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from capbuild.errors import ConfigError, InputError, MissingExtraError
from capbuild.models.dual_encoder import DualEncoder, files_digest
from capbuild.models.transforms import ImageTransform


class OpenClipEncoder(DualEncoder):
    def __init__(self, model: Any, tokenizer: Any, **base: Any) -> None:
        super().__init__(**base)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        return self.model.encode_text(self.tokenizer(texts).to(self.device))


def load_open_clip(spec: str, device: torch.device, dtype: torch.dtype) -> OpenClipEncoder:
    """`ARCH:PRETRAINED`: an architecture open_clip knows (built in or added with add_model_config)
    and a weights file (or a pretrained tag, which open_clip downloads where the hub is reachable)."""
    try:
        import open_clip
    except ImportError as error:
        raise MissingExtraError("open_clip_torch", "openclip", "an open_clip:... score model") from error
    arch, _, pretrained = spec.partition(":")
    if not arch or not pretrained:
        raise ConfigError(
            f"open_clip:{spec}: give the architecture and its weights, open_clip:ARCH:WEIGHTS_FILE "
            "(e.g. open_clip:ViT-B-32:/models/ViT-B-32-laion2b.bin)"
        )
    config = open_clip.get_model_config(arch)
    if config is None:
        raise ConfigError(f"open_clip knows no architecture {arch!r} (open_clip.list_models() lists them)")
    weights = Path(pretrained).expanduser()
    if weights.is_file():
        identity = files_digest([weights], arch, json.dumps(config, sort_keys=True))
        pretrained, label = str(weights), weights.name
    elif "/" in pretrained or pretrained.startswith((".", "~")):
        raise InputError(f"open_clip weights {pretrained} not found")
    else:
        identity = files_digest([], arch, json.dumps(config, sort_keys=True), pretrained)
        label = pretrained
    model, _, _ = open_clip.create_model_and_transforms(arch, pretrained=pretrained, device="cpu")
    preprocess = open_clip.get_model_preprocess_cfg(model)
    transform = _transform(preprocess)
    return OpenClipEncoder(
        model,
        open_clip.get_tokenizer(arch),
        name=f"open_clip:{arch}:{label}",
        fingerprint=files_digest([], identity, repr(transform)),
        image_transform=transform,
        device=device,
        dtype=dtype,
    )


def _transform(preprocess: dict[str, Any]) -> ImageTransform:
    """open_clip's inference preprocessing (`shortest` or `squash` resize, its mean/std) as an ImageTransform."""
    size = preprocess.get("size", 224)
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    mode = "squash" if preprocess.get("resize_mode") == "squash" else "shortest"
    if preprocess.get("resize_mode") == "longest":
        raise ConfigError("open_clip models with resize_mode 'longest' are not supported as score models")
    return ImageTransform(
        size=(int(height), int(width)),
        mean=tuple(preprocess.get("mean", (0.48145466, 0.4578275, 0.40821073))),
        std=tuple(preprocess.get("std", (0.26862954, 0.26130258, 0.27577711))),
        resize_mode=mode,
        interpolation=preprocess.get("interpolation", "bicubic"),
    )
