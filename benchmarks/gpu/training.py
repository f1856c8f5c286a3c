"""Training part: `capbuild train`'s loop (capbuild.train.trainer.train, what the command runs) at
ViT-B/32 + BERT-base sizes with random weights, batch 256, bf16 autocast against fp32, on procedural
shards made on the spot; steps/s and samples/s over the steps after the warm-up, with the GPU's
utilisation sampled through NVML over those same steps.

Each precision runs in its own process; the parent reads metrics.jsonl (one line per step) as it
grows, so it knows when the timed steps begin and keeps the figures of a run stopped at its limit.

    python -m benchmarks.gpu.training SPEC.json      (one run; the part starts these)
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.gpu.budget import Budget, die_with_parent
from benchmarks.gpu.record import PartRecord
from benchmarks.gpu.shards import ensure_shards, sample_count
from benchmarks.gpu.system import GpuMonitor
from benchmarks.gpu.towers import save_towers

METRICS = "metrics.jsonl"


@dataclass(frozen=True)
class Sizes:
    images: int
    side: int
    batch: int
    steps: int
    warmup: int  # steps left out of the figures (start-up, first shards, kernel selection)
    workers: int
    start_seconds: float  # allowed for a run's start before its first step


FULL = Sizes(images=16384, side=256, batch=256, steps=60, warmup=10, workers=min(12, os.cpu_count() or 1),
             start_seconds=40.0)  # fmt: skip
SMOKE = Sizes(images=32, side=64, batch=8, steps=3, warmup=1, workers=1, start_seconds=60.0)
PRECISIONS = ("bf16", "fp32")


def run_part(record: PartRecord, budget: Budget, work: Path, tiny: bool) -> None:
    sizes = SMOKE if tiny else FULL
    started = time.monotonic()
    shards = ensure_shards(work / "shards", sizes.images, sizes.side, per_shard=512, workers=sizes.workers)
    towers = save_towers(work / "towers", tiny)
    record.setup(
        towers="tiny ViT + BERT" if tiny else "ViT-B/32 + BERT-base (random weights, BERT vocabulary 30,522)",
        batch=sizes.batch,
        steps=sizes.steps,
        warmup_steps_left_out=sizes.warmup,
        loader_workers=sizes.workers,
        shards=f"{len(shards)} shards, {sample_count(work / 'shards')} procedural JPEGs, CC-style captions",
        setup_seconds=round(time.monotonic() - started, 1),
    )
    for index, precision in enumerate(PRECISIONS):
        seconds = budget.left() / (len(PRECISIONS) - index) - 2
        if seconds < sizes.start_seconds:
            record.skip(precision, f"the part's time budget was spent ({budget.left():.0f} s left)")
            continue
        out = work / f"run-{precision}"
        spec = {
            **{"shards": str(work / "shards"), "vision": str(towers[0]), "text": str(towers[1]), "out": str(out)},
            **{"precision": precision, "batch": sizes.batch, "steps": sizes.steps, "workers": sizes.workers},
        }
        figures, outcome = _run(spec, seconds, sizes.warmup, work)
        if figures:
            record.figure(precision, figures)
            if outcome:
                record.note(f"{precision}: {outcome}; the steps logged until then are kept")
        else:
            record.skip(precision, f"no step after the warm-up: {outcome or 'run ended early'} (log: training.log)")
    figures = record.data["figures"]
    if all(p in figures for p in PRECISIONS):
        record.setup(bf16_over_fp32=round(figures["bf16"]["samples_per_s"] / figures["fp32"]["samples_per_s"], 2))


def _run(spec: dict[str, Any], seconds: float, warmup: int, work: Path) -> tuple[dict[str, Any] | None, str | None]:
    """Run one precision in a child process, watching its metrics; (figures or None, what went wrong)."""
    spec_path = work / f"train-{spec['precision']}.json"
    spec_path.write_text(json.dumps(spec))
    metrics = Path(spec["out"]) / METRICS
    outcome = None
    with GpuMonitor() as monitor, (work / "training.log").open("ab") as log:
        started = time.monotonic()
        argv = [sys.executable, "-m", "benchmarks.gpu.training", str(spec_path)]
        child = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True, preexec_fn=die_with_parent)
        while child.poll() is None:
            if time.monotonic() - started > seconds:
                outcome = f"stopped at its time limit of {seconds:.0f} s"
                os.killpg(child.pid, 9)
                break
            if monitor.marked is None and len(_steps(metrics)) >= warmup:
                monitor.mark()  # the warm-up steps are done: utilisation counts from here
            time.sleep(0.2)
        child.wait()
        if outcome is None and child.returncode != 0:
            outcome = f"exited with status {child.returncode}"
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, 9)  # loader workers left behind by a failed run
    timed = [m for m in _steps(metrics) if m["step"] > warmup]
    if not timed:
        return None, outcome
    seconds_spent = sum(spec["batch"] / m["samples_per_s"] for m in timed)
    samples_per_s = len(timed) * spec["batch"] / seconds_spent
    figures = {
        "precision": spec["precision"],
        "timed_steps": len(timed),
        "samples_per_s": round(samples_per_s, 1),
        "steps_per_s": round(samples_per_s / spec["batch"], 2),
        "last_loss": round(timed[-1]["loss"], 4),
        **monitor.summary(),
    }
    return figures, outcome


def _steps(metrics: Path) -> list[dict[str, Any]]:
    if not metrics.is_file():
        return []
    lines = metrics.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def main(path: str) -> None:
    from capbuild.train.config import TrainConfig
    from capbuild.train.trainer import train

    spec = json.loads(Path(path).read_text())
    config = TrainConfig(
        data=[spec["shards"]], vision=spec["vision"], text=spec["text"], out=Path(spec["out"]), steps=spec["steps"],
        batch_size=spec["batch"], workers=spec["workers"], precision=spec["precision"], log_every=1,
        save_every=10**9, warmup_steps=10, lr=1e-4,
    )  # fmt: skip
    train(config, show_progress=False)


if __name__ == "__main__":
    main(sys.argv[1])
