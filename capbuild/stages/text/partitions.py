"""The text stage's unit of work: caption-table partitions, and one partition through one segment.

    OUT/.work/text/raw/part-NNNNN.parquet          builder rows, TEXT_BATCH_ROWS per partition
    OUT/.work/text/seg-SS/{kept,rejected}/part-NNNNN.parquet
    OUT/.work/text/seg-SS/counts/part-NNNNN.json   written last: the partition is done for the segment

Every file is written atomically, so a killed worker or build leaves whole partitions or none, and a
re-run redoes only what is missing.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from capbuild.filters.chain import FilterChain

Counts = dict[str, dict[str, int]]
Reports = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class PartitionTask:
    """One partition through one segment: where it is read from and where its outputs go."""

    index: int
    source: str
    kept: str
    rejected: str
    counts: str

    def done(self) -> bool:
        return Path(self.counts).exists()


def part_name(index: int) -> str:
    return f"part-{index:05d}"


def segment_tasks(work: Path, segment: int, partitions: int) -> list[PartitionTask]:
    """The tasks of segment `segment`: it reads the previous segment's kept parts (or the raw ones)."""
    source = work / "raw" if segment == 0 else segment_dir(work, segment - 1) / "kept"
    folder = segment_dir(work, segment)
    return [
        PartitionTask(
            index=i,
            source=str(source / f"{part_name(i)}.parquet"),
            kept=str(folder / "kept" / f"{part_name(i)}.parquet"),
            rejected=str(folder / "rejected" / f"{part_name(i)}.parquet"),
            counts=str(folder / "counts" / f"{part_name(i)}.json"),
        )
        for i in range(partitions)
    ]


def segment_dir(work: Path, segment: int) -> Path:
    return work / f"seg-{segment:02d}"


def run_partition(chain: FilterChain, task: PartitionTask, write: bool = True) -> Counts:
    """Filter one partition and (unless `write` is False) write its kept rows, rejected rows and
    per-filter counts, the counts last."""
    chain.reset_counts()
    kept, rejected = chain.run(pq.read_table(task.source))
    if write:
        write_table_atomic(kept, Path(task.kept))
        write_table_atomic(rejected, Path(task.rejected))
        write_json_atomic({name: dict(c) for name, c in chain.counts.items()}, Path(task.counts))
    return {name: dict(c) for name, c in chain.counts.items()}


def read_counts(task: PartitionTask) -> Counts:
    return json.loads(Path(task.counts).read_text(encoding="utf-8"))


def write_table_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def write_json_atomic(data: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def filter_reports(chain: FilterChain) -> Reports:
    """Each runner's report() (model, cache hits, ...) by its step's label, when it has one."""
    return {label: report for f, label in zip(chain.filters, chain.labels, strict=True) if (report := f.report())}


def merge_reports(reports: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Several workers' reports of the same filters as one: numbers summed, equal values kept,
    differing ones listed."""
    merged: dict[str, dict[str, Any]] = {}
    for report in reports:
        for name, figures in report.items():
            into = merged.setdefault(name, {})
            for key, value in figures.items():
                if key not in into:
                    into[key] = value
                elif isinstance(value, (int, float)) and isinstance(into[key], (int, float)):
                    into[key] += value
                elif into[key] != value:
                    known = into[key] if isinstance(into[key], list) else [into[key]]
                    into[key] = known if value in known else [*known, value]
    return merged
