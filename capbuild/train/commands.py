"""`capbuild train` and `capbuild eval`: thin commands; torch and transformers load only when they run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from capbuild.train import require_train_extra
from capbuild.train.config import TrainConfig

console = Console(stderr=True)

TRAIN_EXAMPLE = (
    "capbuild train --data it-wit/ --data it-coco/ "
    "--weights 3,1 --vision openai/clip-vit-base-patch32 --text dbmdz/bert-base-italian-xxl-uncased "
    "--out runs/it-clip --steps 20000 --batch-size 128 --freeze-steps 2000 --logit-scale 20"
)
EVAL_EXAMPLE = (
    "capbuild eval --model runs/it-clip --data xtd10/ --data xm3600/ --data mscoco-it/ "
    "--compare baseline/eval.json; zero-shot: capbuild eval --model open_clip:ViT-B-32:vit_b32.pt "
    "--classes imagenet-it/classes.txt --templates imagenet-it/templates.txt --images imagenet-it/val/"
)


def _weights(text: str | None) -> list[float]:
    if not text:
        return []
    try:
        return [float(part) for part in text.split(",")]
    except ValueError as err:
        raise ValueError(f"--weights must be numbers separated by commas, e.g. 3,1 (got {text!r})") from err


def train_command(
    data: Annotated[
        list[str],
        typer.Option(
            "--data",
            "-d",
            help="Build folder (its train split), `capbuild mix` folder (its sources and weights) or shard "
            "pattern ('{00000..00099}.tar', glob, folder of tars); repeatable.",
        ),
    ],
    vision: Annotated[str, typer.Option("--vision", help="Vision checkpoint (CLIP or ViT): local path or hub name.")],
    text: Annotated[str, typer.Option("--text", help="Text checkpoint (BERT/RoBERTa-like): local path or hub name.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder: config, metrics.jsonl, checkpoint, final model.")
    ],
    steps: Annotated[int | None, typer.Option("--steps", help="Optimizer steps (or give --epochs).")] = None,
    epochs: Annotated[
        float | None, typer.Option("--epochs", help="Passes over the data, counted from sizes.json.")
    ] = None,
    weights: Annotated[
        str | None, typer.Option("--weights", help="Sampling weight of each --data, e.g. 3,1 (a mixture's is shared).")
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Samples per step on each GPU/process.")] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.")] = 5e-5,
    weight_decay: Annotated[
        float, typer.Option("--weight-decay", help="Decoupled weight decay (not on biases/norms).")
    ] = 0.1,
    warmup_steps: Annotated[int, typer.Option("--warmup-steps", help="Linear warm-up before the cosine decay.")] = 500,
    optimizer: Annotated[
        str, typer.Option("--optimizer", help="adamw, or adabelief (with adaptive gradient clipping).")
    ] = "adamw",
    agc_clip: Annotated[
        float, typer.Option("--agc-clip", help="Adaptive gradient clipping factor (adabelief only).")
    ] = 0.01,
    logit_scale: Annotated[
        float | None, typer.Option("--logit-scale", help="Fix the logit scale (e.g. 20); default learnable.")
    ] = None,
    projection_dim: Annotated[int, typer.Option("--projection-dim", help="Size of the shared embedding.")] = 512,
    max_length: Annotated[int, typer.Option("--max-length", help="Caption tokens kept.")] = 77,
    freeze_steps: Annotated[
        int, typer.Option("--freeze-steps", help="Steps training only projections and scale first.")
    ] = 0,
    lock_image: Annotated[
        bool, typer.Option("--lock-image", help="Never train the vision tower (locked-image tuning).")
    ] = False,
    distill_from: Annotated[
        str | None,
        typer.Option("--distill-from", help="English CLIP teacher: student(caption) regresses teacher(caption_orig)."),
    ] = None,
    distill_weight: Annotated[float, typer.Option("--distill-weight", help="Weight of the distillation MSE.")] = 1.0,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="No image augmentation.")] = False,
    no_resample: Annotated[
        bool, typer.Option("--no-resample", help="Epoch-wise shuffled shards instead of resampling.")
    ] = False,
    shuffle_buffer: Annotated[int, typer.Option("--shuffle-buffer", help="Samples shuffled in each worker.")] = 1000,
    workers: Annotated[int, typer.Option("--workers", help="Loader worker processes per GPU.")] = 4,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    precision: Annotated[str, typer.Option("--precision", help="bf16 (autocast on GPU) or fp32.")] = "bf16",
    save_every: Annotated[int, typer.Option("--save-every", help="Steps between checkpoints.")] = 1000,
    log_every: Annotated[int, typer.Option("--log-every", help="Steps between metrics.jsonl lines.")] = 10,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its checkpoint.")] = False,
) -> None:
    """Train a CLIP-style dual encoder (VisionTextDualEncoderModel) on capbuild shards. Multi-GPU: torchrun."""
    with _errors():
        config = TrainConfig(
            data=data,
            vision=vision,
            text=text,
            out=out,
            weights=_weights(weights),
            steps=steps,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            weight_decay=weight_decay,
            warmup_steps=warmup_steps,
            optimizer=optimizer,
            agc_clip=agc_clip,
            logit_scale=logit_scale,
            projection_dim=projection_dim,
            max_length=max_length,
            freeze_steps=freeze_steps,
            lock_image=lock_image,
            distill_from=distill_from,
            distill_weight=distill_weight,
            augment=not no_augment,
            resample=not no_resample,
            shuffle_buffer=shuffle_buffer,
            workers=workers,
            seed=seed,
            precision=precision,
            save_every=save_every,
            log_every=log_every,
            resume=resume,
        )
        require_train_extra()
        _quiet_transformers()
        from capbuild.train.trainer import train

        last = train(config)
        if os.environ.get("RANK", "0") != "0":
            return  # under torchrun, rank 0 reports
        console.print(
            f"[bold green]done[/]: step {last.get('step')}, loss {last.get('loss', float('nan')):.4f}; model in {out}"
        )
        console.print(f"evaluate: capbuild eval --model {out} --data EVAL_BUILD")


def eval_command(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="A capbuild train run, a local Hugging Face CLIP-like folder (CLIPModel, SiglipModel, "
            "VisionTextDualEncoderModel) or open_clip:ARCH[:WEIGHTS_FILE].",
        ),
    ],
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            "-d",
            help="Evaluation set: a build folder (its test split, or its only split) or a shard pattern; "
            "repeatable. Retrieval is reported per set and language.",
        ),
    ] = None,
    classes: Annotated[
        Path | None, typer.Option("--classes", help="Class names, one a line, in the target language.")
    ] = None,
    templates: Annotated[
        Path | None, typer.Option("--templates", help="Prompt templates, one a line, '{}' for the class.")
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option("--images", help="ImageNet-style folder: one sub-folder per class, sorted as --classes."),
    ] = None,
    compare: Annotated[
        Path | None, typer.Option("--compare", help="Another eval.json: print this result minus it, per cell.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where eval.json goes (default: MODEL/eval.json for a folder model)."),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images or captions embedded at once.")] = 128,
    workers: Annotated[int, typer.Option("--workers", help="Loader worker processes.")] = 2,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, cuda:1 (default: a GPU if any).")] = None,
) -> None:
    """Retrieval (MRR@k, Recall@k, mAP) per evaluation set and language, and zero-shot top-k accuracy; eval.json."""
    with _errors():
        require_train_extra()
        _quiet_transformers()
        import json

        from capbuild.train.evaluate import (
            TABLE_WIDTH,
            EvalRequest,
            compare_table,
            evaluate,
            print_tables,
            write_result,
        )

        if out is None and model.startswith("open_clip:"):
            raise ValueError(f"--model {model} is no folder to write eval.json in: give --out")
        path = out or Path(model) / "eval.json"
        other = json.loads(compare.read_text(encoding="utf-8")) if compare else None  # fails before the model runs
        request = EvalRequest(
            model=model,
            data=data or [],
            classes=classes,
            templates=templates,
            images=images,
            batch_size=batch_size,
            workers=workers,
            device=device,
        )
        result = evaluate(request, show_progress=True)
        screen = Console(width=max(Console().width, TABLE_WIDTH))
        print_tables(result, screen)
        if other is not None:
            screen.print(compare_table(result, other, str(compare)))
        write_result(result, path)
        console.print(f"written: {path}")


def _quiet_transformers() -> None:
    """The command shows its own progress: no per-file loading bars, no "newly initialised projections"
    warning (new projections are what training starts from)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def register(app: typer.Typer) -> None:
    """Add `train` and `eval` to the capbuild command."""
    app.command("train", epilog=f"Example: {TRAIN_EXAMPLE}")(train_command)
    app.command("eval", epilog=f"Example: {EVAL_EXAMPLE}")(eval_command)


class _errors:
    """Expected errors become a red message and exit code 2, as in the build commands."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: object) -> bool:
        if isinstance(error, (ValueError, FileNotFoundError, RuntimeError, OSError)):
            console.print(f"[bold red]error:[/] {error}")
            raise typer.Exit(2)
        return False
