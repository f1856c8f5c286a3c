"""The dual encoder: a `transformers.VisionTextDualEncoderModel` built from local (or hub) vision and
text checkpoints, its embeddings, and which of its parts train in each mode."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoImageProcessor,
    AutoModel,
    AutoTokenizer,
    VisionTextDualEncoderModel,
    VisionTextDualEncoderProcessor,
)

from capbuild.errors import ConfigError, InputError
from capbuild.train.data import ImageGeometry

# CLIP's normalisation, for vision checkpoints that ship no image processor.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps the learnt temperature at 100


def checkpoint(name: str | Path, what: str) -> str:
    """A model reference as transformers takes it; a path that is not a folder fails clearly here
    rather than as a malformed hub id."""
    text = str(name)
    if (Path(text).is_absolute() or text.startswith((".", "~"))) and not Path(text).expanduser().is_dir():
        raise InputError(f"{what} {text} is not a folder: give one saved with save_pretrained, or a hub name")
    return str(Path(text).expanduser()) if text.startswith("~") else text


def build_model(
    vision: str, text: str, projection_dim: int, logit_scale: float | None = None
) -> tuple[VisionTextDualEncoderModel, VisionTextDualEncoderProcessor]:
    """A fresh dual encoder (pretrained towers, new projections) and its processor.

    `logit_scale` fixes the temperature (clip-italian found 20 best); None leaves it learnable.
    """
    vision, text = checkpoint(vision, "--vision"), checkpoint(text, "--text")
    model = VisionTextDualEncoderModel.from_vision_text_pretrained(vision, text, projection_dim=projection_dim)
    image_processor = AutoImageProcessor.from_pretrained(vision)
    processor = VisionTextDualEncoderProcessor(
        image_processor=image_processor, tokenizer=AutoTokenizer.from_pretrained(text)
    )
    if logit_scale is not None:
        model.logit_scale.data.fill_(math.log(logit_scale))
    return model, processor


def load_run(path: str | Path) -> tuple[VisionTextDualEncoderModel, VisionTextDualEncoderProcessor]:
    """A finished run (or any saved dual encoder) and its processor, as users load it."""
    path = checkpoint(path, "--model")
    return VisionTextDualEncoderModel.from_pretrained(path), VisionTextDualEncoderProcessor.from_pretrained(path)


def image_geometry(model: VisionTextDualEncoderModel, processor: VisionTextDualEncoderProcessor) -> ImageGeometry:
    """The side the vision tower was built for, and the processor's normalisation."""
    image_processor = processor.image_processor
    mean = tuple(getattr(image_processor, "image_mean", None) or CLIP_MEAN)
    std = tuple(getattr(image_processor, "image_std", None) or CLIP_STD)
    return ImageGeometry(size=int(model.config.vision_config.image_size), mean=mean, std=std)


def image_embeddings(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """Projected (not normalised) image embeddings of a dual encoder or CLIP model."""
    return model.visual_projection(model.vision_model(pixel_values=pixel_values).pooler_output)


def text_embeddings(model: nn.Module, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
    """Projected (not normalised) text embeddings of a dual encoder or CLIP model."""
    output = model.text_model(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    return model.text_projection(output.pooler_output)


class ContrastiveModel(nn.Module):
    """The forward pass DDP wraps: normalised image and text embeddings, plus the student's raw text
    embedding of `caption` for distillation."""

    def __init__(self, model: VisionTextDualEncoderModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        pixel_values: torch.Tensor,
        text: dict[str, torch.Tensor],
        distill_text: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        images = F.normalize(image_embeddings(self.model, pixel_values), dim=-1)
        texts = F.normalize(text_embeddings(self.model, text), dim=-1)
        distill = None if distill_text is None else text_embeddings(self.model, distill_text)
        return images, texts, distill


def set_trainable(model: VisionTextDualEncoderModel, *, backbones: bool, lock_image: bool, learn_scale: bool) -> None:
    """Which parameters train.

    backbones=False: first stage of --freeze-steps, only the projections (and a learnable scale) train.
    lock_image: the vision tower never trains (LiT); its projection, a new layer, does.
    """
    model.requires_grad_(True)
    if not backbones:
        model.vision_model.requires_grad_(False)
        model.text_model.requires_grad_(False)
    if lock_image:
        model.vision_model.requires_grad_(False)
    model.logit_scale.requires_grad_(learn_scale)
    model.train()
    for tower in (model.vision_model, model.text_model):
        if not any(p.requires_grad for p in tower.parameters()):
            tower.eval()  # a frozen tower runs without dropout


def load_teacher(path: str) -> tuple[nn.Module, Any]:
    """A frozen teacher (CLIP or dual encoder with a text tower and projection) and its tokenizer."""
    path = checkpoint(path, "--distill-from")
    teacher = AutoModel.from_pretrained(path)
    if not (hasattr(teacher, "text_model") and hasattr(teacher, "text_projection")):
        raise ConfigError(f"--distill-from {path}: not a CLIP-style model (needs text_model and text_projection)")
    teacher.requires_grad_(False)
    teacher.eval()
    return teacher, AutoTokenizer.from_pretrained(path)
