"""The report of a build in the terminal: rich tables of counts, filters with examples, failures."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from capbuild.cards.card import reasons
from capbuild.cards.report import Report

EXAMPLES_PER_FILTER = 3


def print_summary(report: Report, console: Console) -> None:
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
