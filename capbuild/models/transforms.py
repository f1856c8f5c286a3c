"""The image preprocessing of a dual encoder as one picklable object: PIL image or uint8 tensor in,
normalised float tensor out, with the resize done on the tensor (faster than PIL's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

RESIZE_MODES = ("shortest", "squash")
# PIL resampling codes (what Hugging Face image processors store) -> torchvision interpolation names.
PIL_RESAMPLING = {0: "nearest", 2: "bilinear", 3: "bicubic", 1: "lanczos", 4: "box", 5: "hamming"}


@dataclass(frozen=True)
class ImageTransform:
    """Resize (`shortest`: the short side to `resize` then a centre crop to `size`; `squash`: straight
    to `size`), scale to [0, 1] and normalise per channel. `size` is (height, width)."""

    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize_mode: str = "shortest"
    resize: int | None = None
    interpolation: str = "bicubic"

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES} (got {self.resize_mode!r})")

    def __call__(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        """A PIL image (any mode) or a uint8 (C, H, W) tensor -> float (3, H, W)."""
        if isinstance(image, Image.Image):
            image = TF.pil_to_tensor(image.convert("RGB"))
        return self.from_uint8(image)

    def from_uint8(self, pixels: torch.Tensor) -> torch.Tensor:
        """The tensor-side pipeline: uint8 (C, H, W) or (N, C, H, W) with 1, 3 or 4 channels."""
        return self.normalise(self.resize_uint8(pixels))

    def resize_uint8(self, pixels: torch.Tensor) -> torch.Tensor:
        """Geometry only: uint8 in, uint8 (3, *size) out (what loader workers send, 4x lighter than floats)."""
        if pixels.shape[-3] == 1:
            pixels = pixels.expand(*pixels.shape[:-3], 3, *pixels.shape[-2:])
        elif pixels.shape[-3] == 4:
            pixels = pixels[..., :3, :, :]
        mode = InterpolationMode(self.interpolation)
        if self.resize_mode == "squash":
            return TF.resize(pixels, list(self.size), interpolation=mode, antialias=True)
        pixels = TF.resize(pixels, [self.resize or min(self.size)], interpolation=mode, antialias=True)
        return TF.center_crop(pixels, list(self.size))

    def normalise(self, pixels: torch.Tensor | Sequence[torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 pixels of the right size, (N, 3, H, W) on any device, -> normalised float32; with
        `out` (float32, (N, 3, H, W)), written into it, and `pixels` may be N separate (3, H, W)
        images: a buffer reused across batches spares the CPU a fresh allocation, and its page
        faults, on every batch, and each image is copied into it straight, never stacked first.
        Both ways give the same bits."""
        if out is None:
            scaled = TF.to_dtype(pixels, torch.float32, scale=True)
        else:  # what to_dtype computes, in place
            for row, image in zip(out, pixels, strict=True):
                row.copy_(image)
            scaled = out.mul_(1.0 / 255)
        return TF.normalize(scaled, list(self.mean), list(self.std), inplace=True)


def interpolation_name(resample: Any) -> str:
    """A Hugging Face processor's `resample` (a PIL code, an enum of one, or a torchvision mode) as
    a torchvision interpolation name; bicubic when unset."""
    if resample is None:
        return "bicubic"
    if isinstance(resample, InterpolationMode):
        return resample.value
    value = getattr(resample, "value", resample)
    if isinstance(value, str):
        return InterpolationMode(value.lower()).value
    return PIL_RESAMPLING.get(int(value), "bicubic")
