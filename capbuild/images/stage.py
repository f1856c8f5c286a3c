"""The image stage: img2dataset fetches and resizes the images of the caption table into
WebDataset shards, then capbuild counts what failed and why and writes shards/sizes.json."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from capbuild.images.download import PER_HOST_RPS_KEY, SPARK_MASTER_ENV
from capbuild.images.failures import failure_reason
from capbuild.images.options import DEFAULT_PER_HOST_RPS, DISTRIBUTORS, RESIZE_MODES, ImageOptions
from capbuild.images.writer import TABLE_KEY, in_table_order, rewrite_shard
from capbuild.table import part_files, score_fields

__all__ = ["DEFAULT_PER_HOST_RPS", "DISTRIBUTORS", "RESIZE_MODES", "ImageOptions", "run_image_stage"]

# Columns of the caption table that go into every sample's KEY.json (img2dataset adds url,
# width, height, original size, status and sha256). The table's key travels as TABLE_KEY (see
# capbuild.images.writer).
SAMPLE_COLUMNS = (
    "source", "source_id", "split", "image_ref", "lang", "caption_orig", "lang_orig", "captions", "captions_orig",
    "meta",
)  # fmt: skip
SPLIT_ORDER = ("train", "val", "test")
SIZES_NAME = "sizes.json"


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
        "user_agent_token": options.user_agent_token,
        PER_HOST_RPS_KEY: options.per_host_rps,
        "distributor": options.distributor,
        "extract_exif": False,
        "enable_wandb": False,
        "incremental_mode": "incremental",
    }


def run_image_stage(captions: Path, out: Path, work: Path, options: ImageOptions) -> dict[str, Any]:
    """Write OUT/shards from the caption table's parts; returns the stage's counts.

    img2dataset runs once over one input file per split (it never lets a shard span two input
    files, so every shard holds one split) and resumes finished shards; then each shard is
    rewritten into OUT/shards with samples in table order and the caption table's key as the
    sample key. Parts are read one at a time, so memory does not grow with the table.
    """
    inputs, raw = work / "input", work / "raw"
    shutil.rmtree(inputs, ignore_errors=True)
    inputs.mkdir(parents=True)
    rows_per_split = _write_inputs(captions, inputs)
    splits: dict[str, list[str]] = {}
    shard_count = 0
    for split, rows in rows_per_split.items():
        count = -(-rows // options.shard_size)
        splits[split] = [f"{shard:05d}" for shard in range(shard_count, shard_count + count)]
        shard_count += count
    if shard_count:
        extra = [c for c in pq.read_schema(next(inputs.glob("*.parquet"))).names if c not in ("url", "caption")]
        args_path = work / "img2dataset-args.json"
        args_path.write_text(json.dumps(img2dataset_arguments(inputs, raw, options, extra), indent=2))
        _run_img2dataset(args_path, raw, shard_count, work / "img2dataset.log", distributor_env(options))
    return _finalise(splits, raw, out / "shards", expected=sum(rows_per_split.values()))


def _write_inputs(captions: Path, inputs: Path) -> dict[str, int]:
    """One img2dataset input file per split, named so that img2dataset's sorted read gives
    SPLIT_ORDER first; returns the rows per split in that order."""
    writers: dict[str, pq.ParquetWriter] = {}
    rows: Counter[str] = Counter()
    try:
        for part in part_files(captions):
            table = pq.read_table(part)
            splits = pa.array([s if s is not None else "train" for s in table["split"].to_pylist()], pa.string())
            for split in pc.unique(splits).to_pylist():
                selected = _input_columns(table.filter(pc.equal(splits, split)))
                if split not in writers:
                    writers[split] = pq.ParquetWriter(inputs / f"{_input_name(split)}.parquet", selected.schema)
                writers[split].write_table(selected)
                rows[split] += len(selected)
    finally:
        for writer in writers.values():
            writer.close()
    return {split: rows[split] for split in sorted(rows, key=_input_name)}


def _input_name(split: str) -> str:
    rank = SPLIT_ORDER.index(split) if split in SPLIT_ORDER else len(SPLIT_ORDER)
    return f"{rank}-{re.sub(r'[^A-Za-z0-9_-]', '_', split)}"


def _input_columns(table: pa.Table) -> pa.Table:
    scores = list(score_fields(table.schema))
    columns = {"url": table["image_url"], "caption": table["caption"], TABLE_KEY: table["key"]}
    columns.update({name: table[name] for name in (*SAMPLE_COLUMNS, *scores)})
    return pa.table(columns)


def distributor_env(options: ImageOptions) -> dict[str, str]:
    """Where img2dataset's distributor finds its cluster: a Spark master for pyspark (default: a
    local one with --processes cores), a Ray address for ray (default: a local Ray instance)."""
    env = {}
    if options.distributor == "pyspark":
        env[SPARK_MASTER_ENV] = options.spark_master or f"local[{options.processes}]"
        if env[SPARK_MASTER_ENV].startswith("local") and "PYSPARK_PYTHON" not in os.environ:
            env["PYSPARK_PYTHON"] = sys.executable  # Spark's Python workers need this environment's packages
    if options.distributor == "ray" and options.ray_address:
        env["RAY_ADDRESS"] = options.ray_address
    return env


def _run_img2dataset(args_path: Path, raw: Path, shard_count: int, log_path: Path, extra_env: dict[str, str]) -> None:
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "WANDB_MODE": "disabled", **extra_env}
    command = [sys.executable, "-m", "capbuild.images.download", str(args_path)]
    with log_path.open("ab") as log, _progress() as progress:
        task = progress.add_task("images: shards", total=shard_count)
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        while process.poll() is None:
            progress.update(task, completed=len(_stats_files(raw)))
            time.sleep(0.5)
        progress.update(task, completed=len(_stats_files(raw)))
    missing = shard_count - len(_stats_files(raw))
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


def _stats_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*_stats.json"))


def _finalise(splits: dict[str, list[str]], raw: Path, shards: Path, expected: int) -> dict[str, Any]:
    """Put every finished shard into OUT/shards in table order (a hard link when img2dataset's workers
    already wrote it so, else a rewrite); count successes per shard and failures per reason.
    raw/ stays whole until the build ends, so an interrupted finalise starts again from it."""
    shutil.rmtree(shards, ignore_errors=True)
    shards.mkdir(parents=True)
    sizes: dict[str, int] = {}
    failed: Counter[str] = Counter()
    per_source: dict[str, Counter[str]] = {}
    per_shard: dict[str, dict[str, Any]] = {}
    for name in (name for names in splits.values() for name in names):
        if in_table_order(raw / f"{name}.parquet"):
            for suffix in (".tar", ".parquet"):
                _link(raw / f"{name}{suffix}", shards / f"{name}{suffix}")
        else:
            rewrite_shard(raw / name, shards / name)
        _link(raw / f"{name}_stats.json", shards / f"{name}_stats.json")
        samples = pq.read_table(shards / f"{name}.parquet", columns=["status", "error_message", "source"])
        sizes[f"{name}.tar"] = samples["status"].to_pylist().count("success")
        shard_failed: Counter[str] = Counter()
        for status, message, source in zip(
            *(samples[c].to_pylist() for c in ("status", "error_message", "source")), strict=True
        ):
            outcome = "success" if status == "success" else failure_reason(message)
            per_source.setdefault(source, Counter())[outcome] += 1
            if status != "success":
                shard_failed[outcome] += 1
        failed.update(shard_failed)
        per_shard[f"{name}.tar"] = shard_counts(len(samples), sizes[f"{name}.tar"], shard_failed)
    (shards / SIZES_NAME).write_text(json.dumps(sizes, indent=2, sort_keys=True) + "\n")
    attempted = sum(sum(c.values()) for c in per_source.values())
    if attempted != expected:
        raise RuntimeError(f"img2dataset reported {attempted} samples for {expected} table rows; re-run to resume")
    return {
        "attempted": attempted,
        "success": sum(sizes.values()),
        "failed": dict(sorted(failed.items())),
        "shards": len(sizes),
        "splits": {split: [f"{name}.tar" for name in names] for split, names in splits.items()},
        "per_source": {s: dict(sorted(c.items())) for s, c in sorted(per_source.items())},
        "per_shard": per_shard,
    }


def _link(src: Path, dst: Path) -> None:
    """dst as a hard link to src (no copy on one file system), a copy otherwise."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def shard_counts(attempted: int, success: int, failed: Counter[str]) -> dict[str, Any]:
    """One shard's line in the manifest: attempts, successes, success rate, failures by reason."""
    return {
        "attempted": attempted,
        "success": success,
        "success_rate": round(success / attempted, 4) if attempted else None,
        "failed": dict(sorted(failed.items())),
    }
