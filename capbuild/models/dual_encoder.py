"""`load_dual_encoder(spec)`: one interface over every CLIP-like model capbuild accepts.

    RUN_DIR                      a `capbuild train` run folder (its saved VisionTextDualEncoderModel)
    HF_DIR                       a local Hugging Face folder with get_image_features / get_text_features
                                 and its processor (CLIPModel, SiglipModel, VisionTextDualEncoderModel)
    open_clip:ARCH:PRETRAINED    an open_clip architecture with a weights file (or, where the hub is
                                 reachable, a pretrained tag); needs the `openclip` extra

Every encoder gives L2-normalised float32 embeddings on the CPU, computed without gradients, on a GPU
in bf16 (fp16 where bf16 is unsupported) when one is present, else on the CPU in fp32. Its
`image_transform` is picklable, for DataLoader workers.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F

from capbuild.errors import ConfigError, InputError
from capbuild.models.transforms import ImageTransform
from capbuild.train.config import CONFIG_NAME as RUN_CONFIG

OPEN_CLIP_PREFIX = "open_clip:"
TEXT_BATCH = 256
# Files of a model folder that decide its embeddings; run folders also hold these, which do not.
WEIGHT_SUFFIXES = (".json", ".safetensors", ".bin", ".txt", ".model", ".tiktoken")
NOT_MODEL_FILES = ("train_config.json", "eval.json", "trainer_state.json", "training_args.bin")


class DualEncoder(ABC):
    """Image and text towers of one model. `name` is for people; `fingerprint` changes whenever the
    weights, the tokenizer or the preprocessing change, so saved embeddings can be reused safely."""

    def __init__(
        self, name: str, fingerprint: str, image_transform: ImageTransform, device: torch.device, dtype: torch.dtype
    ) -> None:
        self.name = name
        self.fingerprint = fingerprint
        self.image_transform = image_transform
        self.device = device
        self.dtype = dtype

    @abstractmethod
    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """Projected image embeddings of a batch already on the device."""

    @abstractmethod
    def _text_features(self, texts: list[str]) -> torch.Tensor:
        """Projected text embeddings of one batch of texts, on the device."""

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) from `image_transform` -> (N, dim) normalised float32 on the CPU."""
        features = self._image_features(pixels.to(self.device, self.dtype, non_blocking=True))
        return F.normalize(features.float(), dim=-1).cpu()

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """Texts -> (N, dim) normalised float32 on the CPU, in batches of TEXT_BATCH."""
        if not texts:
            return torch.empty(0, self.dim)
        parts = [self._text_features(texts[i : i + TEXT_BATCH]) for i in range(0, len(texts), TEXT_BATCH)]
        return F.normalize(torch.cat(parts).float(), dim=-1).cpu()

    @cached_property
    def dim(self) -> int:
        """The embedding size."""
        with torch.no_grad():
            return int(self._text_features([""]).shape[-1])


def load_dual_encoder(spec: str, device: str | None = None) -> DualEncoder:
    """The encoder a spec names (see the module docstring); `device` defaults to the first GPU, else CPU."""
    target, dtype = inference_device(device)
    if spec.startswith(OPEN_CLIP_PREFIX):
        from capbuild.models.openclip import load_open_clip

        return load_open_clip(spec[len(OPEN_CLIP_PREFIX) :], target, dtype)
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise InputError(
            f"score model {spec!r} is not a folder: give a `capbuild train` run, a local Hugging Face "
            f"CLIP-like folder (CLIPModel, SiglipModel, VisionTextDualEncoderModel) or open_clip:ARCH:WEIGHTS"
        )
    from capbuild.models.hf import load_hf, load_run

    if (folder / RUN_CONFIG).is_file():
        return load_run(folder, target, dtype)
    return load_hf(folder, target, dtype)


def inference_device(device: str | None) -> tuple[torch.device, torch.dtype]:
    """The device to run on and its dtype: bf16 (or fp16) on a GPU, fp32 on the CPU."""
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    target = torch.device(device)
    if target.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {device!r} asked for, but torch sees no GPU")
        return target, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return target, torch.float32


def files_digest(paths: list[Path], *extra: str) -> str:
    """A short sha256 of the files' names and contents (sorted by name) and any extra strings."""
    digest = hashlib.sha256()
    for text in extra:
        digest.update(text.encode() + b"\0")
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\0")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def model_files(folder: Path) -> list[Path]:
    """The files of a saved model folder that decide its embeddings (config, weights, tokenizer,
    processor), leaving out a run's training records and checkpoints."""
    return [
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix in WEIGHT_SUFFIXES and p.name not in NOT_MODEL_FILES and not p.name.startswith(".")
    ]
