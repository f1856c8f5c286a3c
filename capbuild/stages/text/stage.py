"""The text stage: builder rows -> raw partitions -> plan segments -> OUT/captions + OUT/rejected.

1. The builder streams its rows into raw partitions of TEXT_BATCH_ROWS rows.
2. The plan is cut into segments (see capbuild.stages.text.segments.split_segments).
3. Segments run in plan order: a stateless one on the executor (any worker, any order), a stateful
   one here, over the partitions in order. After each segment, a model-backed step whose captions
   failed beyond its error budget stops the build (finished partitions are kept for a re-run).
4. Every partition's output of every segment is a file of its own, so a re-run resumes per
   partition per segment.
5. The last segment's kept parts become OUT/captions, every segment's rejected parts OUT/rejected.

Each partition meets each step exactly as the batch of the same rows would in one in-process
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
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from capbuild.builders.base import Builder
from capbuild.errors import StepError
from capbuild.filters.base import ERROR_PREFIX
from capbuild.filters.chain import COUNTS
from capbuild.stages.text.executors import Executor, ExecutorOptions, open_executor
from capbuild.stages.text.partitions import (
    Counts,
    PartitionTask,
    Reports,
    filter_reports,
    read_counts,
    run_partition,
    segment_tasks,
    write_json_atomic,
)
from capbuild.stages.text.plan import Plan
from capbuild.stages.text.records import StepRecord
from capbuild.stages.text.segments import PlanSegment, split_segments
from capbuild.table import conform, rows_to_table, write_part

TEXT_BATCH_ROWS = 20_000
RAW_DONE = "done.json"


def run_text_stage(
    builder: Builder, plan: Plan, out: Path, work: Path, executor: ExecutorOptions | None = None
) -> dict[str, Any]:
    """Run (or resume) the text stage of `plan` over the builder's rows; returns the stage's counts,
    with one record per step (see capbuild.stages.text.records)."""
    text = work / "text"
    with _progress() as progress:
        raw = _write_raw_partitions(builder, text, progress)
        segments = split_segments(plan)
        reports: Reports = {}
        with ExitStack() as stack:
            opened: list[Executor] = []

            def get_executor() -> Executor:
                if not opened:
                    opened.append(stack.enter_context(open_executor(executor or ExecutorOptions())))
                return opened[0]

            for segment in segments:
                tasks = segment_tasks(text, segment.index, raw["partitions"])
                reports.update(_run_segment(segment, tasks, get_executor, progress))
                _check_error_budgets(segment, tasks)
        return _assemble(plan, segments, text, raw, out, work, reports)


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
    segment: PlanSegment, tasks: list[PartitionTask], executor: Callable[[], Executor], progress: Progress
) -> Reports:
    pending = [t for t in tasks if not t.done()]
    bar = progress.add_task(f"steps: {escape(segment.label)}", total=len(tasks), completed=len(tasks) - len(pending))
    if not pending:
        return {}

    def on_done(_index: int, _counts: Counts) -> None:
        progress.advance(bar)

    if segment.stateful:
        # Earlier batches decide this step's verdicts: one process, partitions in order; the
        # partitions a previous run finished are replayed (not rewritten) to rebuild its memory.
        chain = segment.chain()
        for task in tasks:
            if task.done():
                run_partition(chain, task, write=False)
            else:
                on_done(task.index, run_partition(chain, task))
        return filter_reports(chain)
    return executor().map(segment, pending, on_done)


def _check_error_budgets(segment: PlanSegment, tasks: list[PartitionTask]) -> None:
    """Stop the build when a step's captions failed (model errors) beyond its error budget."""
    for step, label in zip(segment.steps, segment.labels, strict=True):
        budget = step.error_budget()
        if budget is None:
            continue
        totals = Counter[str]()
        for task in tasks:
            totals.update(read_counts(task).get(label, {}))
        if totals["errors"] > budget * totals["in"]:
            raise StepError(
                f"{label}: the model failed on {totals['errors']:,} of {totals['in']:,} captions, more than the "
                f"error budget ({budget:.2%}); first failures: {'; '.join(_first_errors(step.name, tasks))}. "
                "Finished partitions are kept: fix the cause (or raise the budget) and re-run the same command."
            )


def _first_errors(name: str, tasks: list[PartitionTask], count: int = 3) -> list[str]:
    found: list[str] = []
    for task in tasks:
        rejected = pq.read_table(task.rejected, columns=["filter", "filter_value"])
        mask = pc.and_(pc.equal(rejected["filter"], name), pc.starts_with(rejected["filter_value"], ERROR_PREFIX))
        found += rejected.filter(mask)["filter_value"].to_pylist()[: count - len(found)]
        if len(found) >= count:
            break
    return found


def _assemble(
    plan: Plan,
    segments: list[PlanSegment],
    text: Path,
    raw: dict[str, Any],
    out: Path,
    work: Path,
    reports: Reports,
) -> dict[str, Any]:
    """Write OUT/captions and OUT/rejected from the segments' parts; sum counts in plan order.
    `reports` (step reports by label) cover the partitions this run processed."""
    staging = {name: work / name for name in ("captions", "rejected")}
    for folder in staging.values():
        shutil.rmtree(folder, ignore_errors=True)
    schema, rejected_schema = plan.schema, plan.rejected_schema
    labels = plan.labels
    step_counts = {label: dict.fromkeys(COUNTS, 0) for label in labels}
    kept_by_source: Counter[str] = Counter()
    rejected_by_source: Counter[str] = Counter()
    all_tasks = [segment_tasks(text, s.index, raw["partitions"]) for s in segments]
    for part in range(raw["partitions"]):
        tasks = [seg_tasks[part] for seg_tasks in all_tasks]
        for task in tasks:
            for name, counts in read_counts(task).items():
                for what, value in counts.items():
                    step_counts[name][what] += value
        last = tasks[-1].kept if tasks else str(text / "raw" / f"part-{part:05d}.parquet")
        kept = conform(pq.read_table(last), schema)
        rejected = pa.concat_tables(
            [rejected_schema.empty_table()] + [conform(pq.read_table(t.rejected), rejected_schema) for t in tasks]
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
    steps = [
        StepRecord.of(step, label, step_counts[label], reports.get(label, {}))
        for step, label in zip(plan.steps, labels, strict=True)
    ]
    return {
        "source_rows": raw["source_rows"],
        "builder": raw["builder"],
        "steps": [record.to_json() for record in steps],
        "captions": sum(kept_by_source.values()),
        "rejected": sum(rejected_by_source.values()),
        "per_source": {s: {"captions": kept_by_source[s], "rejected": rejected_by_source[s]} for s in sources},
    }
