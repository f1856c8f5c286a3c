"""`capbuild train` and `capbuild eval`: options generated from TrainConfig and EvalRequest; torch and
transformers load only when the commands run."""

from __future__ import annotations

import os
from typing import Any

import typer
from rich.console import Console

from capbuild.cli.errors import report_errors
from capbuild.cli.output import console
from capbuild.cli.params import field_parameters, field_values, parameter, signature
from capbuild.train.config import EvalRequest, TrainConfig

TRAIN_EXAMPLE = (
    "capbuild train --data it-wit/ --data 'it-coco/shards/{00000..00009}.tar' "
    "--weights 3,1 --vision openai/clip-vit-base-patch32 --text dbmdz/bert-base-italian-xxl-uncased "
    "--out runs/it-clip --steps 20000 --batch-size 128 --freeze-steps 2000 --logit-scale 20"
)
EVAL_EXAMPLE = (
    "capbuild eval --model runs/it-clip --data xtd10/ --data xm3600/ --data mscoco-it/ "
    "--compare baseline/eval.json; zero-shot: capbuild eval --model open_clip:ViT-B-32:vit_b32.pt "
    "--classes imagenet-it/classes.txt --templates imagenet-it/templates.txt --images imagenet-it/val/ --out zs.json"
)
WEIGHTS = parameter("weights", str | None, None, ("--weights",), "Sampling weight of each --data, e.g. 3,1.")
EVAL_OUT = parameter(
    "eval_out", str | None, None, ("--out", "-o"), "Where eval.json goes (default: MODEL/eval.json for a folder)."
)
COMPARE = parameter(
    "compare", str | None, None, ("--compare",), "Another eval.json: print this result minus it, cell by cell."
)


def register(app: typer.Typer) -> None:
    """Add `train` and `eval` to the capbuild command."""
    app.command("train", epilog=f"Example: {TRAIN_EXAMPLE}")(train_command)
    app.command("eval", epilog=f"Example: {EVAL_EXAMPLE}")(eval_command)


@report_errors
def train_command(**values: Any) -> None:
    """Train a CLIP-style dual encoder (VisionTextDualEncoderModel) on capbuild shards. Multi-GPU: torchrun."""
    from capbuild.cards.mix import parse_weights
    from capbuild.train import require_train_extra

    fields = field_values(TrainConfig, values)
    config = TrainConfig(**fields, weights=parse_weights(values["weights"]))
    require_train_extra()
    _quiet_transformers()
    from capbuild.train.trainer import train

    last = train(config)
    if os.environ.get("RANK", "0") != "0":
        return  # under torchrun, rank 0 reports
    console.print(
        f"done: step {last.get('step')}, loss {last.get('loss', float('nan')):.4f}; model in {config.out}", markup=False
    )
    console.print(f"evaluate: capbuild eval --model {config.out} --data EVAL_BUILD", markup=False)


train_command.__signature__ = signature(field_parameters(TrainConfig), [WEIGHTS])  # type: ignore[attr-defined]


@report_errors
def eval_command(**values: Any) -> None:
    """Retrieval (MRR@k, Recall@k, mAP) per evaluation set and language, and zero-shot top-k accuracy;
    writes eval.json."""
    import json
    from pathlib import Path

    from capbuild.errors import ConfigError, InputError
    from capbuild.train import require_train_extra

    request = EvalRequest(**field_values(EvalRequest, values))
    if values["eval_out"] is None and request.model.startswith("open_clip:"):
        raise ConfigError(f"--model {request.model} is no folder to write eval.json in: give --out")
    path = Path(values["eval_out"]) if values["eval_out"] else Path(request.model) / "eval.json"
    other = None
    if values["compare"]:
        try:  # read before the model runs
            other = json.loads(Path(values["compare"]).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"--compare {values['compare']}: not a readable eval.json ({error})") from None
    require_train_extra()
    _quiet_transformers()
    from capbuild.train.evaluate import TABLE_WIDTH, compare_table, evaluate, print_tables, write_result

    result = evaluate(request, show_progress=True)
    screen = Console(width=max(Console().width, TABLE_WIDTH))
    print_tables(result, screen)
    if other is not None:
        screen.print(compare_table(result, other, values["compare"]))
    write_result(result, path)
    console.print(f"written: {path}", markup=False)


eval_command.__signature__ = signature(field_parameters(EvalRequest), [EVAL_OUT, COMPARE])  # type: ignore[attr-defined]


def _quiet_transformers() -> None:
    """The command shows its own progress: no per-file loading bars, no "newly initialised projections"
    warning (new projections are what training starts from)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
