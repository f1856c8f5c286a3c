"""The text stage: builder rows -> raw partitions -> filter segments -> OUT/captions + OUT/rejected.

1. The builder streams its rows into raw partitions of TEXT_BATCH_ROWS rows.
2. The filter chain is cut into segments (see capbuild.partitions.split_segments).
3. Segments run in chain order: a stateless one on the executor (any worker, any order), a stateful
   one here, over the partitions in order.
4. Every partition's output of every segment is a file of its own, so a re-run resumes per
   partition per segment.
5. The last segment's kept parts become OUT/captions, every segment's rejected parts OUT/rejected.

Each partition meets each filter exactly as the batch of the same rows would in one in-process
FilterChain, so the table is the same on every executor and for any number of workers.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from capbuild.builders.base import Builder
from capbuild.executors import Executor, ExecutorOptions, open_executor
from capbuild.filters.base import FilterContext
from capbuild.filters.chain import FilterChain
from capbuild.partitions import (
    Counts,
    PartitionTask,
    Reports,
    Segment,
    filter_reports,
    read_counts,
    run_partition,
    segment_tasks,
    split_segments,
    write_json_atomic,
)
from capbuild.table import conform, rows_to_table, write_part

TEXT_BATCH_ROWS = 20_000
RAW_DONE = "done.json"


def run_text_stage(
    builder: Builder,
    chain: FilterChain,
    specs: list[str],
    context: FilterContext,
    out: Path,
    work: Path,
    executor: ExecutorOptions | None = None,
) -> dict[str, Any]:
    """Run (or resume) the text stage; `chain` holds make_filters(specs, context), which workers
    other than this process build again from `specs` and `context`. Returns the stage's counts."""
    text = work / "text"
    with _progress() as progress:
        raw = _write_raw_partitions(builder, text, progress)
        segments = split_segments(chain.filters)
        reports: dict[str, dict[str, Any]] = {}
        with ExitStack() as stack:
            opened: list[Executor] = []

            def get_executor() -> Executor:
                if not opened:
                    opened.append(stack.enter_context(open_executor(executor or ExecutorOptions())))
                return opened[0]

            for segment in segments:
                tasks = segment_tasks(text, segment.index, raw["partitions"])
                reports.update(
                    _run_segment(segment, tasks, specs, chain.score_columns, context, get_executor, progress)
                )
        return _assemble(chain, segments, text, raw, out, work, reports)


def _progress() -> Progress:
    return Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )


def _write_raw_partitions(builder: Builder, text: Path, progress: Progress) -> dict[str, Any]:
    """The builder's rows as raw partitions, or what an earlier run of this build already wrote."""
    raw = text / "raw"
    if (raw / RAW_DONE).exists():
        return json.loads((raw / RAW_DONE).read_text(encoding="utf-8"))
    shutil.rmtree(text, ignore_errors=True)
    task = progress.add_task("captions: reading the source", total=None)
    rows: list[dict[str, Any]] = []
    read = partitions = 0
    for row in builder.rows():
        rows.append(row)
        read += 1
        if len(rows) >= TEXT_BATCH_ROWS:
            write_part(rows_to_table(rows), raw, partitions)
            partitions += 1
            rows = []
            progress.update(task, description=f"captions: {read:,} rows read")
    if rows or partitions == 0:
        write_part(rows_to_table(rows), raw, partitions)
        partitions += 1
    progress.update(task, description=f"captions: {read:,} rows read", total=1, completed=1)
    info = {"partitions": partitions, "source_rows": read, "builder": builder.report()}
    write_json_atomic(info, raw / RAW_DONE)
    return info


def _run_segment(
    segment: Segment,
    tasks: list[PartitionTask],
    specs: list[str],
    score_columns: list[str],
    context: FilterContext,
    executor: Callable[[], Executor],
    progress: Progress,
) -> Reports:
    pending = [t for t in tasks if not t.done()]
    bar = progress.add_task(f"filters: {escape(segment.label)}", total=len(tasks), completed=len(tasks) - len(pending))
    if not pending:
        return {}

    def on_done(_index: int, _counts: Counts) -> None:
        progress.advance(bar)

    if segment.stateful:
        # Earlier batches decide this filter's verdicts: one process, partitions in order; the
        # partitions a previous run finished are replayed (not rewritten) to rebuild its memory.
        chain = FilterChain(list(segment.filters), score_columns)
        for task in tasks:
            if task.done():
                run_partition(chain, task, write=False)
            else:
                on_done(task.index, run_partition(chain, task))
        return filter_reports(segment.filters)
    return executor().map(segment, pending, specs, context, score_columns, on_done)


def _assemble(
    chain: FilterChain,
    segments: list[Segment],
    text: Path,
    raw: dict[str, Any],
    out: Path,
    work: Path,
    reports: Reports,
) -> dict[str, Any]:
    """Write OUT/captions and OUT/rejected from the segments' parts; sum counts in chain order.
    `reports` (filter reports by description) cover the partitions this run filtered."""
    staging = {name: work / name for name in ("captions", "rejected")}
    for folder in staging.values():
        shutil.rmtree(folder, ignore_errors=True)
    filter_counts = {f.describe(): {"in": 0, "kept": 0, "dropped": 0} for f in chain.filters}
    kept_by_source: Counter[str] = Counter()
    rejected_by_source: Counter[str] = Counter()
    all_tasks = [segment_tasks(text, s.index, raw["partitions"]) for s in segments]
    for part in range(raw["partitions"]):
        tasks = [seg_tasks[part] for seg_tasks in all_tasks]
        for task in tasks:
            for name, counts in read_counts(task).items():
                for what, value in counts.items():
                    filter_counts[name][what] += value
        last = tasks[-1].kept if tasks else str(text / "raw" / f"part-{part:05d}.parquet")
        kept = conform(pq.read_table(last), chain.schema)
        rejected = pa.concat_tables(
            [chain.rejected_schema.empty_table()]
            + [conform(pq.read_table(t.rejected), chain.rejected_schema) for t in tasks]
        )
        if len(kept) or part == 0:
            write_part(kept, staging["captions"], part)
        if len(rejected):
            write_part(rejected, staging["rejected"], part)
        kept_by_source.update(kept["source"].to_pylist())
        rejected_by_source.update(rejected["source"].to_pylist())
    for name, folder in staging.items():
        shutil.rmtree(out / name, ignore_errors=True)
        if folder.exists():
            folder.replace(out / name)
    sources = sorted(set(kept_by_source) | set(rejected_by_source))
    return {
        "source_rows": raw["source_rows"],
        "builder": raw["builder"],
        "filters": filter_counts,
        "reports": {name: reports[name] for name in filter_counts if name in reports},
        "captions": sum(kept_by_source.values()),
        "rejected": sum(rejected_by_source.values()),
        "per_source": {s: {"captions": kept_by_source[s], "rejected": rejected_by_source[s]} for s in sources},
    }
