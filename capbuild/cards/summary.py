"""A build in the terminal: the summary a build prints, `capbuild info`'s manifest tables and
`capbuild inspect`'s report (rich tables of counts, filters with examples, failures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from capbuild import __version__
from capbuild.layout import REJECTED, SHARDS, join
from capbuild.stages.text.records import step_records

if TYPE_CHECKING:
    from capbuild.cards.report import Report

EXAMPLES_PER_FILTER = 3


def print_summary(report: Report, console: Console) -> None:
    from capbuild.cards.card import reasons

    facts = report.facts
    counts = facts.manifest["counts"]
    text, images = counts.get("text", {}), counts.get("images") or {}
    console.print(
        f"[bold]{facts.out}[/]: {facts.samples:,} samples, {facts.captions.rows:,} captions kept "
        f"({', '.join(facts.captions.languages)}), from {', '.join(sorted(facts.sources))}"
    )
    sources = Table(title="Per source")
    for column in ("source", "rows read", "kept", "images", "images failed"):
        sources.add_column(column, justify="left" if column == "source" else "right")
    for source, c in text.get("per_source", {}).items():
        outcome = dict(images.get("per_source", {}).get(source, {}))
        fetched = outcome.pop("success", 0)
        sources.add_row(
            source, f"{c['captions'] + c['rejected']:,}", f"{c['captions']:,}", f"{fetched:,}", reasons(outcome)
        )
    console.print(sources)

    splits = Table(title="Per split")
    splits.add_column("split")
    splits.add_column("samples", justify="right")
    for split, n in facts.split_samples().items():
        splits.add_row(split, f"{n:,}")
    console.print(splits)

    if report.kept:
        kept = Table(title=f"Kept samples ({len(report.kept)} drawn at random)")
        for column in ("source", "split", "key", "caption"):
            kept.add_column(column)
        for sample in report.kept:
            kept.add_row(sample.source, sample.split or "", sample.key, sample.caption)
        console.print(kept)

    filters = Table(title="Filters, with examples of what they dropped")
    for column in ("filter", "in", "dropped", "examples (value: caption)"):
        filters.add_column(column, justify="right" if column in ("in", "dropped") else "left")
    filter_counts = facts.step_counts
    for spec, samples in report.dropped.items():
        c = filter_counts.get(spec, {})
        examples = "\n".join(f"{s.reason}: {_short(s.caption)}" for s in samples[:EXAMPLES_PER_FILTER])
        filters.add_row(spec, f"{c.get('in', 0):,}", f"{c.get('dropped', 0):,}", examples or "-")
    console.print(filters)

    if report.failed:
        failed = Table(title="Images that failed")
        for column in ("reason", "images", "example"):
            failed.add_column(column, justify="right" if column == "images" else "left")
        for reason, samples in report.failed.items():
            failed.add_row(reason, f"{images['failed'].get(reason, 0):,}", _short(samples[0].reason or "", 90))
        console.print(failed)

    stats = facts.captions
    if stats.words:
        words = stats.words
        line = f"words per caption: mean {words['mean']:g}, median {words['median']:g}, {words['min']}..{words['max']}"
        if stats.propn_ratio:
            line += f"; PROPN ratio: mean {stats.propn_ratio['mean']:g}"
        console.print(line)
    console.print(f"Look at the samples: capbuild inspect {facts.out} --html report.html")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def print_build_summary(out: str | Path, manifest: dict[str, Any], console: Console) -> None:
    """What a build command prints when it finishes: rows kept and rejected, images, where to look next."""
    text = manifest["counts"].get("text", {})
    images = manifest["counts"].get("images")
    console.print(
        f"[bold green]done[/]: {text.get('source_rows', 0)} rows read, {text.get('captions', 0)} kept, "
        f"{text.get('rejected', 0)} rejected (see {join(out, REJECTED)})"
    )
    if images:
        failed = ", ".join(f"{k}: {v}" for k, v in images["failed"].items()) or "none"
        console.print(
            f"images: {images['success']} in {images['shards']} shard(s) under {join(out, SHARDS)}; failed: {failed}"
        )
    console.print(f"details: capbuild info {out}", markup=False)


def print_manifest(manifest: dict[str, Any], console: Console) -> None:
    """`capbuild info`: the configuration, stages and counts of a build."""
    config = Table(title="Build", show_header=False)
    config.add_row("capbuild", f"{manifest.get('capbuild', '?')} (this one: {__version__})")
    config.add_row("fingerprint", manifest["fingerprint"])
    for key, value in manifest["config"].items():
        config.add_row(key, json.dumps(value, ensure_ascii=False))
    for stage, state in manifest["stages"].items():
        config.add_row(f"stage {stage}", "done" if state.get("done") else "not done")
    console.print(config)
    text = manifest["counts"].get("text")
    if text:
        steps = Table(title=f"Text steps ({text['source_rows']} rows from the builder)")
        for column in ("step", "kind", "in", "kept", "dropped", "errors"):
            steps.add_column(column, justify="left" if column in ("step", "kind") else "right")
        for record in step_records(manifest):
            counts = [str(record.counts.get(what, 0)) for what in ("in", "kept", "dropped", "errors")]
            steps.add_row(record.spec, record.kind, *counts)
        console.print(steps)
        skipped = [
            (f"{kind}: {reason}", count) for kind, counts in text["builder"].items() for reason, count in counts.items()
        ]
        if skipped:
            builder = Table(title="Builder: skipped and repaired")
            builder.add_column("what")
            builder.add_column("count", justify="right")
            for what, count in skipped:
                builder.add_row(what, str(count))
            console.print(builder)
        for record in step_records(manifest):
            if not record.report:
                continue
            details = Table(title=record.spec, show_header=False)
            for key, value in record.report.items():
                details.add_row(key, str(value))
            console.print(details)
    images = manifest["counts"].get("images")
    if images:
        table = Table(title="Images by source")
        outcomes = sorted({o for c in images["per_source"].values() for o in c})
        table.add_column("source")
        for outcome in outcomes:
            table.add_column(outcome, justify="right")
        for source, counts in images["per_source"].items():
            table.add_row(source, *(str(counts.get(o, 0)) for o in outcomes))
        console.print(table)
    decontamination = [r for r in manifest.get("decontamination", []) if not r.get("pending")]
    if decontamination:
        table = Table(title="Decontamination (rows showing an evaluation set's image)")
        for column in ("evaluation set", "rows dropped", "shard samples dropped", "when"):
            table.add_column(column, justify="left" if column in ("evaluation set", "when") else "right")
        for record in decontamination:
            when = "text stage" if record.get("stage") == "text" else "after the build"
            table.add_row(record["label"], str(record["rows"]), str(record.get("samples") or 0), when)
        console.print(table)
    for run in manifest["counts"].get("image_filters") or []:
        model = run.get("score_model") or {}
        title = f"Image filters, run {run['run']}: {run['samples']} samples in, {run['kept']} kept"
        table = Table(title=title + (f" (score model {model['name']})" if model else ""))
        table.add_column("image filter")
        table.add_column("dropped", justify="right")
        for record in run["filters"]:
            table.add_row(record["filter"], str(record["dropped"]))
        console.print(table)
