"""The image stage: img2dataset fetches and resizes the images of the caption table into
WebDataset shards, then capbuild counts what failed and why and writes shards/sizes.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from capbuild.images.failures import failure_reason
from capbuild.table import SCORE_FIELDS

RESIZE_MODES = ("no", "border", "keep_ratio", "keep_ratio_largest", "center_crop")
# Columns of the caption table that go into every sample's KEY.json (img2dataset adds url,
# key, width, height, original size, status and sha256). The table's own key is `table_key`
# because img2dataset reserves `key` for the sample key it writes in the tar.
SAMPLE_COLUMNS = ("source", "source_id", "split", "lang", "caption_orig", "lang_orig", "captions", "meta")
SIZES_NAME = "sizes.json"


@dataclass
class ImageOptions:
    """How images are fetched and stored. Only the output-deciding fields enter the fingerprint."""

    image_size: int = 256
    resize_mode: str = "border"
    shard_size: int = 10_000
    encode_quality: int = 95
    max_image_pixels: int = 89_478_485
    processes: int = 1
    threads: int = 16
    timeout: int = 10
    retries: int = 0

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"--resize-mode must be one of {', '.join(RESIZE_MODES)} (got {self.resize_mode!r})")
        if self.image_size <= 0 or self.shard_size <= 0:
            raise ValueError("--image-size and --shard-size must be positive")

    def output_config(self) -> dict[str, Any]:
        config = asdict(self)
        for operational in ("processes", "threads", "timeout", "retries"):
            config.pop(operational)
        return config


def img2dataset_arguments(input_path: Path, shards: Path, options: ImageOptions, extra: list[str]) -> dict[str, Any]:
    """The keyword arguments of img2dataset.download for this build."""
    return {
        "url_list": str(input_path),
        "input_format": "parquet",
        "url_col": "url",
        "caption_col": "caption",
        "save_additional_columns": extra,
        "output_folder": str(shards),
        "output_format": "webdataset",
        "image_size": options.image_size,
        "resize_mode": options.resize_mode,
        "encode_quality": options.encode_quality,
        "max_image_area": float(options.max_image_pixels),
        "number_sample_per_shard": options.shard_size,
        "processes_count": options.processes,
        "thread_count": options.threads,
        "timeout": options.timeout,
        "retries": options.retries,
        "extract_exif": False,
        "enable_wandb": False,
        "incremental_mode": "incremental",
    }


def run_image_stage(table: pa.Table, out: Path, work: Path, options: ImageOptions) -> dict[str, Any]:
    """Write OUT/shards from the caption table; resumes finished shards. Returns the stage's counts."""
    shards = out / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    # img2dataset reads every *.json in the folder as a finished shard's stats; sizes.json is
    # written again at the end.
    (shards / SIZES_NAME).unlink(missing_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    if len(table):
        input_path = work / "images_input.parquet"
        extra = _write_input(table, input_path)
        args_path = work / "img2dataset_args.json"
        args_path.write_text(json.dumps(img2dataset_arguments(input_path, shards, options, extra), indent=2))
        total_shards = -(-len(table) // options.shard_size)
        _run_img2dataset(args_path, shards, total_shards, work / "img2dataset.log")
    return _collect(shards, expected=len(table))


def _write_input(table: pa.Table, path: Path) -> list[str]:
    scores = [c for c in table.column_names if c in SCORE_FIELDS]
    columns = {"url": table["image_url"], "caption": table["caption"], "table_key": table["key"]}
    columns.update({name: table[name] for name in (*SAMPLE_COLUMNS, *scores)})
    pq.write_table(pa.table(columns), path)
    return [name for name in columns if name not in ("url", "caption")]


def _run_img2dataset(args_path: Path, shards: Path, total_shards: int, log_path: Path) -> None:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled"}
    command = [sys.executable, "-m", "capbuild.images.download", str(args_path)]
    with log_path.open("ab") as log, _progress() as progress:
        task = progress.add_task("images: shards", total=total_shards)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        while process.poll() is None:
            progress.update(task, completed=len(_stats_files(shards)))
            time.sleep(0.5)
        progress.update(task, completed=len(_stats_files(shards)))
    missing = total_shards - len(_stats_files(shards))
    if process.returncode != 0 or missing:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(
            f"img2dataset stopped (exit {process.returncode}, {missing} shard(s) unfinished); "
            f"re-run the same command to resume. Its log ({log_path}) ends with:\n{tail}"
        )


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    )


def _stats_files(shards: Path) -> list[Path]:
    return sorted(shards.glob("*_stats.json"))


def _collect(shards: Path, expected: int) -> dict[str, Any]:
    """Count successes per shard (sizes.json) and failures per reason from img2dataset's outputs."""
    sizes: dict[str, int] = {}
    failed: Counter[str] = Counter()
    per_source: dict[str, Counter[str]] = {}
    for stats_path in _stats_files(shards):
        shard = stats_path.name.split("_")[0]
        sizes[f"{shard}.tar"] = json.loads(stats_path.read_text())["successes"]
        samples = pq.read_table(shards / f"{shard}.parquet", columns=["status", "error_message", "source"])
        for status, message, source in zip(*(samples[c].to_pylist() for c in samples.column_names), strict=True):
            outcome = "success" if status == "success" else failure_reason(message)
            per_source.setdefault(source, Counter())[outcome] += 1
            if status != "success":
                failed[outcome] += 1
    (shards / SIZES_NAME).write_text(json.dumps(sizes, indent=2, sort_keys=True) + "\n")
    attempted = sum(sum(c.values()) for c in per_source.values())
    if attempted != expected:
        raise RuntimeError(f"img2dataset reported {attempted} samples for {expected} table rows; re-run to resume")
    return {
        "attempted": attempted,
        "success": sum(sizes.values()),
        "failed": dict(sorted(failed.items())),
        "shards": len(sizes),
        "per_source": {s: dict(sorted(c.items())) for s, c in sorted(per_source.items())},
    }
