"""The training loop: one process per GPU under torchrun (DDP), or one process on CPU/GPU.

RUN_DIR gets train_config.json, metrics.jsonl (one line per logged step), checkpoint.pt (every
--save-every steps, for --resume) and, at the end, the model and processor (save_pretrained).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from timm.optim import AdaBelief
from timm.utils.agc import adaptive_clip_grad
from torch.nn.parallel import DistributedDataParallel
from transformers import get_cosine_schedule_with_warmup

from capbuild.atomic import atomic_path
from capbuild.errors import ConfigError, InputError
from capbuild.train.config import CONFIG_NAME, TrainConfig, load_config
from capbuild.train.data import LoaderOptions, TrainCollate, count_samples, image_transform, train_loader
from capbuild.train.loss import contrastive_loss, distillation_loss
from capbuild.train.model import (
    MAX_LOGIT_SCALE,
    ContrastiveModel,
    build_model,
    image_geometry,
    load_teacher,
    set_trainable,
    text_embeddings,
)
from capbuild.train.sources import train_sources

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
# Options that may change between a run and its --resume (they do not change what is learnt).
RESUMABLE_CHANGES = {"resume", "workers", "save_every", "log_every", "steps", "epochs"}


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed() -> Distributed:
    """Join the torchrun process group when launched by torchrun, else run alone on cuda:0 or CPU."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        if torch.cuda.is_available():
            torch.cuda.set_device(local_rank)
            device = torch.device("cuda", local_rank)
        else:
            device = torch.device("cpu")
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return Distributed(dist.get_rank(), dist.get_world_size(), device)
    return Distributed(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or AdaBelief; no weight decay on biases, norms and the logit scale (CLIP's convention).
    Every parameter is registered, so towers frozen for --freeze-steps start training when unfrozen."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (decay if param.ndim >= 2 and "logit_scale" not in name else no_decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adabelief":
        return AdaBelief(groups, lr=config.lr, decoupled_decay=True)
    return torch.optim.AdamW(groups, lr=config.lr)


def total_steps(config: TrainConfig, sources: list[list[str]], world: int) -> int:
    """--steps, or --epochs over the samples of every source (sizes.json) at the global batch size."""
    if config.steps is not None:
        return config.steps
    samples = sum(count_samples(urls) for urls in sources)
    return max(1, math.ceil(config.epochs * samples / (config.batch_size * world)))


def _check_run_folder(config: TrainConfig) -> None:
    saved = config.out / CONFIG_NAME
    if config.resume:
        if not (config.out / CHECKPOINT_NAME).is_file():
            raise InputError(f"--resume: no {CHECKPOINT_NAME} in {config.out}; start without --resume")
        before = load_config(config.out).to_json()
        changed = sorted(k for k, v in config.to_json().items() if k not in RESUMABLE_CHANGES and before.get(k) != v)
        if changed:
            raise ConfigError(f"--resume with different options ({', '.join(changed)}) than the run in {config.out}")
    elif saved.is_file():
        raise ConfigError(f"{config.out} already holds a run: add --resume to continue it, or choose another --out")


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    moved: dict[str, Any] = {}
    for key, value in batch.items():
        if isinstance(value, dict):
            moved[key] = {k: v.to(device, non_blocking=True) for k, v in value.items()}
        else:
            moved[key] = value.to(device, non_blocking=True)
    return moved


def _save_checkpoint(path: Path, step: int, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> None:
    state = {
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _losses(
    wrapped: torch.nn.Module, model: Any, teacher: torch.nn.Module | None, batch: dict[str, Any], distill_weight: float
) -> dict[str, torch.Tensor]:
    """The step's loss: InfoNCE, plus the weighted distillation term when there is a teacher."""
    images, texts, student = wrapped(batch["pixel_values"], batch["text"], batch.get("distill_text"))
    losses = {"contrastive": contrastive_loss(images, texts, model.logit_scale)}
    if teacher is not None:
        with torch.no_grad():
            target = text_embeddings(teacher, batch["teacher_text"])
        losses["distill"] = distillation_loss(student, target, batch["distill_mask"])
    losses["loss"] = losses["contrastive"] + distill_weight * losses.get("distill", 0.0)
    return losses


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>8.1f} samples/s  loss {task.fields[loss]:.4f}"),
        TimeRemainingColumn(),
        disable=not enabled,
    )


def train(config: TrainConfig, show_progress: bool = True) -> dict[str, Any]:
    """Run (or resume) training; returns the last logged metrics. The model is saved in config.out."""
    env = init_distributed()
    _check_run_folder(config)
    if env.world > 1:
        dist.barrier()  # every rank has checked the folder before rank 0 writes into it
    sources, weights = train_sources(config.data, config.weights)
    torch.manual_seed(config.seed)
    model, processor = build_model(config.vision, config.text, config.projection_dim, config.logit_scale)
    teacher, teacher_tokenizer = (None, None) if config.distill_from is None else load_teacher(config.distill_from)
    if teacher is not None:
        teacher.to(env.device)
        teacher_dim = teacher.text_projection.out_features
        if teacher_dim != config.projection_dim:
            raise ConfigError(f"--distill-from embeds in {teacher_dim} dimensions: set --projection-dim {teacher_dim}")
    model.to(env.device)
    optimizer = build_optimizer(model, config)
    steps = total_steps(config, sources, env.world)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(config.warmup_steps, steps), steps)
    start = 0
    if config.resume:
        state = torch.load(config.out / CHECKPOINT_NAME, map_location=env.device, weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["step"]
    if env.main:
        config.save(config.out)
    geometry = image_geometry(model, processor)
    collate = TrainCollate(processor.tokenizer, config.max_length, teacher_tokenizer)
    options = LoaderOptions(
        batch_size=config.batch_size,
        workers=config.workers,
        seed=config.seed + start,  # a resumed run draws new samples rather than replaying the first ones
        resample=config.resample,
        shuffle_buffer=config.shuffle_buffer,
        weights=tuple(weights),
    )
    batches = train_loader(sources, image_transform(geometry, config.augment), collate, options)
    autocast = config.precision == "bf16" and env.device.type == "cuda"
    learn_scale = config.logit_scale is None
    wrapped: torch.nn.Module = ContrastiveModel(model)
    stage = None
    last: dict[str, Any] = {}
    metrics_file = (config.out / METRICS_NAME).open("a") if env.main else None
    window_start, window_samples = time.perf_counter(), 0
    with _progress(show_progress and env.main) as progress:
        task = progress.add_task("train", total=steps, completed=start, rate=0.0, loss=float("nan"))
        for step in range(start, steps):
            backbones = step >= config.freeze_steps
            if stage != backbones:  # (re)wrap when the trainable set changes: DDP registers it once
                set_trainable(model, backbones=backbones, lock_image=config.lock_image, learn_scale=learn_scale)
                wrapped = DistributedDataParallel(ContrastiveModel(model)) if env.world > 1 else ContrastiveModel(model)
                stage = backbones
            batch = _to_device(next(batches), env.device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
                losses = _losses(wrapped, model, teacher, batch, config.distill_weight)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            if config.optimizer == "adabelief":
                adaptive_clip_grad([p for p in model.parameters() if p.grad is not None], clip_factor=config.agc_clip)
            optimizer.step()
            scheduler.step()
            if learn_scale:
                with torch.no_grad():
                    model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
            done = step + 1
            window_samples += batch["pixel_values"].shape[0] * env.world
            if done % config.log_every == 0 or done == steps:  # .item() waits for the GPU: only when logging
                rate = window_samples / (time.perf_counter() - window_start)
                last = {"step": done, **{k: v.item() for k, v in losses.items()}, "lr": scheduler.get_last_lr()[0]}
                last.update(logit_scale=model.logit_scale.exp().item(), samples_per_s=rate)
                last["stage"] = "all" if backbones else "projections"
                progress.update(task, rate=rate, loss=last["loss"])
                if metrics_file:
                    metrics_file.write(json.dumps(last) + "\n")
                    metrics_file.flush()
                window_start, window_samples = time.perf_counter(), 0
            progress.update(task, completed=done)
            if env.main and (done % config.save_every == 0 or done == steps):
                _save_checkpoint(config.out / CHECKPOINT_NAME, done, model, optimizer, scheduler)
    batches.close()  # stops the loader workers
    if metrics_file:
        metrics_file.close()
    if env.main:
        model.save_pretrained(config.out)
        processor.save_pretrained(config.out)
    if env.world > 1:
        dist.barrier()
    return last
