"""Symmetric InfoNCE over embeddings gathered from every rank, and the distillation term."""

from __future__ import annotations

import warnings

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
import torch.nn.functional as F


def _gather(embeddings: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All ranks' embeddings (gradients flow back to each rank's own) and this rank's row offset."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return embeddings, 0
    with warnings.catch_warnings():
        # deprecated in torch 2.14 for a private API; still the public differentiable all_gather
        warnings.simplefilter("ignore", FutureWarning)
        gathered = torch.cat(dist_nn.all_gather(embeddings), dim=0)
    return gathered, dist.get_rank() * embeddings.shape[0]


def contrastive_loss(images: torch.Tensor, texts: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's loss on normalised embeddings: each local image against every rank's texts and vice versa."""
    all_images, offset = _gather(images)
    all_texts, _ = _gather(texts)
    labels = torch.arange(images.shape[0], device=images.device) + offset
    scale = logit_scale.exp()
    per_image = scale * images @ all_texts.T
    per_text = scale * texts @ all_images.T
    return (F.cross_entropy(per_image.float(), labels) + F.cross_entropy(per_text.float(), labels)) / 2


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE between the L2-normalised student embedding of `caption` and the teacher's of `caption_orig`,
    over the samples that have an original caption (zero when none has)."""
    if not mask.any():
        return student.sum() * 0.0
    student = F.normalize(student[mask].float(), dim=-1)
    teacher = F.normalize(teacher[mask].float(), dim=-1)
    return F.mse_loss(student, teacher, reduction="none").sum(dim=-1).mean()
