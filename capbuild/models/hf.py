"""Hugging Face dual encoders: any local model folder with `get_image_features` / `get_text_features`
and its processor, and `capbuild train` runs (a saved VisionTextDualEncoderModel plus train_config.json)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch

from capbuild.errors import InputError
from capbuild.models.dual_encoder import DualEncoder, files_digest, model_files
from capbuild.models.transforms import ImageTransform, interpolation_name

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# SigLIP was trained on captions padded to the full length; its processor's docs say to do the same.
PAD_TO_MAX = ("siglip", "siglip2")
DEFAULT_MAX_LENGTH = 77


class HFDualEncoder(DualEncoder):
    """A transformers model with get_image_features / get_text_features and its tokenizer."""

    def __init__(self, model: Any, tokenizer: Any, max_length: int, pad_to_max: bool, **base: Any) -> None:
        super().__init__(**base)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.padding: str | bool = "max_length" if pad_to_max else True
        self.text_inputs = set(inspect.signature(model.get_text_features).parameters)

    def _image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_image_features(pixel_values=pixels))

    def _text_features(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            texts, padding=self.padding, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        inputs = {k: v.to(self.device) for k, v in tokens.items() if k in self.text_inputs}
        return _features(self.model.get_text_features(**inputs))


def _features(output: Any) -> torch.Tensor:
    """transformers 5 returns the projected embeddings as `pooler_output`; 4.x returns the tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def load_hf(folder: Path, device: torch.device, dtype: torch.dtype) -> HFDualEncoder:
    """A local Hugging Face CLIP-like folder, preprocessed as its image processor says."""
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} has no config.json: save the model and its processor with save_pretrained")
    model = AutoModel.from_pretrained(folder)
    if not (hasattr(model, "get_image_features") and hasattr(model, "get_text_features")):
        raise InputError(
            f"{folder} holds a {type(model).__name__}, which has no get_image_features/get_text_features: "
            "give a CLIP-like model (CLIPModel, SiglipModel, VisionTextDualEncoderModel)"
        )
    transform = processor_transform(AutoImageProcessor.from_pretrained(folder))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model_type = getattr(model.config, "model_type", "")
    return HFDualEncoder(
        model,
        tokenizer,
        text_max_length(model, tokenizer),
        model_type in PAD_TO_MAX,
        name=f"{type(model).__name__}:{folder.name}",
        fingerprint=files_digest(model_files(folder), repr(transform)),
        image_transform=transform,
        device=device,
        dtype=dtype,
    )


def load_run(folder: Path, device: torch.device, dtype: torch.dtype) -> HFDualEncoder:
    """A finished `capbuild train` run, preprocessed and tokenised as the trainer did."""
    from transformers import VisionTextDualEncoderModel, VisionTextDualEncoderProcessor

    from capbuild.train.config import load_config
    from capbuild.train.model import image_geometry

    if not (folder / "config.json").is_file():
        raise InputError(f"{folder} is a `capbuild train` run that has not saved its model yet (no config.json)")
    model = VisionTextDualEncoderModel.from_pretrained(folder)
    processor = VisionTextDualEncoderProcessor.from_pretrained(folder)
    geometry = image_geometry(model, processor)
    transform = ImageTransform(size=(geometry.size, geometry.size), mean=geometry.mean, std=geometry.std)
    max_length = load_config(folder).max_length
    return HFDualEncoder(
        model,
        processor.tokenizer,
        max_length,
        False,
        name=f"capbuild-run:{folder.name}",
        fingerprint=files_digest(model_files(folder), repr(transform), str(max_length)),
        image_transform=transform,
        device=device,
        dtype=dtype,
    )


def text_max_length(model: Any, tokenizer: Any) -> int:
    """The longest input the text tower takes: its position table, capped by the tokenizer's limit."""
    text_config = getattr(model.config, "text_config", None)
    positions = getattr(text_config, "max_position_embeddings", None) or DEFAULT_MAX_LENGTH
    limit = getattr(tokenizer, "model_max_length", None) or positions
    return int(min(positions, limit))


def processor_transform(processor: Any) -> ImageTransform:
    """The geometry and normalisation a Hugging Face image processor applies, as an ImageTransform.

    `size` with `shortest_edge` (CLIP) resizes the short side then centre-crops to `crop_size`;
    `size` with height/width (SigLIP, ViT) resizes to exactly that."""
    size = _size(processor.size)
    mean = tuple(getattr(processor, "image_mean", None) or CLIP_MEAN)
    std = tuple(getattr(processor, "image_std", None) or CLIP_STD)
    interpolation = interpolation_name(getattr(processor, "resample", None))
    if "shortest_edge" in size:
        edge = int(size["shortest_edge"])
        crop = _size(processor.crop_size) if getattr(processor, "do_center_crop", False) else {}
        out = (int(crop.get("height", edge)), int(crop.get("width", edge)))
        return ImageTransform(size=out, mean=mean, std=std, resize=edge, interpolation=interpolation)
    out = (int(size["height"]), int(size["width"]))
    return ImageTransform(size=out, mean=mean, std=std, resize_mode="squash", interpolation=interpolation)


def _size(value: Any) -> dict[str, int]:
    """A processor's size as a plain dict (a dict in 4.x, a SizeDict in 5.x, an int in old configs)."""
    if value is None:
        return {}
    if isinstance(value, int):
        return {"height": value, "width": value}
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if v is not None}
    keys = ("shortest_edge", "longest_edge", "height", "width")
    return {k: getattr(value, k) for k in keys if getattr(value, k, None) is not None}
