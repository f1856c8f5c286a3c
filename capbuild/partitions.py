"""The text stage's unit of work: caption-table partitions and the filter-chain segments run over them.

    OUT/.work/text/raw/part-NNNNN.parquet          builder rows, TEXT_BATCH_ROWS per partition
    OUT/.work/text/seg-SS/{kept,rejected}/part-NNNNN.parquet
    OUT/.work/text/seg-SS/counts/part-NNNNN.json   written last: the partition is done for the segment

A segment is either a maximal run of stateless filters (any worker may take any partition) or one
stateful filter (one process, partitions in order). Every file is written atomically, so a killed
worker or build leaves whole partitions or none, and a re-run redoes only what is missing.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from capbuild.filters.base import Filter, FilterContext, make_filters
from capbuild.filters.chain import FilterChain

Counts = dict[str, dict[str, int]]
Reports = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Segment:
    """Consecutive filters of the chain that run together on one worker."""

    index: int
    start: int  # the segment is make_filters(...)[start:stop]
    stop: int
    filters: tuple[Filter, ...]
    # The modules registering the whole chain's filters: a worker imports them before make_filters.
    modules: tuple[str, ...]

    @property
    def stateful(self) -> bool:
        return any(f.stateful for f in self.filters)

    @property
    def uses_gpu(self) -> bool:
        return any(f.uses_gpu for f in self.filters)

    @property
    def label(self) -> str:
        return ", ".join(f.describe() for f in self.filters)


def _importable_module(cls: type) -> str:
    """The module defining `cls` under a name another process can import: a module run with
    `python -m NAME` is `__main__` here but NAME there."""
    if cls.__module__ == "__main__":
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        if spec is not None:
            return spec.name
    return cls.__module__


def split_segments(filters: list[Filter]) -> list[Segment]:
    """Cut the chain into maximal runs of stateless filters and single stateful filters."""
    groups: list[list[int]] = []
    for i, flt in enumerate(filters):
        if flt.stateful or not groups or filters[groups[-1][-1]].stateful:
            groups.append([i])
        else:
            groups[-1].append(i)
    modules = tuple(sorted({_importable_module(type(f)) for f in filters}))
    return [Segment(n, g[0], g[-1] + 1, tuple(filters[g[0] : g[-1] + 1]), modules) for n, g in enumerate(groups)]


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
    for counts in chain.counts.values():
        counts.update({"in": 0, "kept": 0, "dropped": 0})
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


class SegmentWorker:
    """Holds one segment's filters, built where it runs (a Ray actor, or in process) the way the
    build built them, `make_filters(specs, context)[start:stop]`, and filters partitions with them.
    Building rather than shipping filters means a worker loads its own model (translation, POS), and
    filters need not be picklable; filters load their models on first use, so the chain's other
    filters cost little."""

    def __init__(
        self,
        specs: list[str],
        context: FilterContext,
        segment: tuple[int, int, tuple[str, ...]],
        score_columns: list[str],
    ) -> None:
        start, stop, modules = segment
        for module in modules:
            importlib.import_module(module)
        self.chain = FilterChain(make_filters(specs, context)[start:stop], score_columns)

    def process(self, task: PartitionTask) -> tuple[int, Counts]:
        return task.index, run_partition(self.chain, task)

    def reports(self) -> dict[str, dict[str, Any]]:
        return filter_reports(self.chain.filters)

    def pid(self) -> int:
        return os.getpid()


def filter_reports(filters: list[Filter] | tuple[Filter, ...]) -> dict[str, dict[str, Any]]:
    """Each filter's report() (model, cache hits, ...) by its description, when it has one."""
    return {f.describe(): report for f in filters if (report := f.report())}


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
