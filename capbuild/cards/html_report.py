"""The report of a build as one self-contained HTML file: inline CSS and SVG, images as data: URIs."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from capbuild.cards.card import reasons
from capbuild.cards.report import Histogram, Report, Sample

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 0.8em; }
figure.sample { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: 0.5em; background: #fafafa; }
figure.sample img, .noimage { width: 128px; height: 128px; object-fit: contain; display: block; }
.noimage { background: #eee; color: #888; font-size: 0.8em; display: flex; align-items: center;
           justify-content: center; }
figcaption p { margin: 0.2em 0; font-size: 0.85em; overflow-wrap: anywhere; }
.caption { font-weight: 600; } .orig, .meta { color: #666; } .reason { color: #a00; }
svg .bar { fill: #4a78c2; } svg text { font-size: 11px; fill: #444; }
"""


def write_html(report: Report, path: Path) -> Path:
    """Write the report to `path` (one file, nothing else needed to view it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path


def render_html(report: Report) -> str:
    facts = report.facts
    title = f"capbuild report: {facts.out.resolve().name}"
    filters = facts.step_counts
    parts = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{facts.samples:,} samples from {escape(', '.join(sorted(facts.sources)))}; "
        f"{facts.captions.rows:,} captions kept; build fingerprint <code>{escape(facts.manifest['fingerprint'])}"
        "</code>.</p>",
        '<section id="counts"><h2>Counts</h2>',
        _counts_tables(report),
        "</section>",
        '<section id="histograms"><h2>Captions</h2>',
        *(_histogram_svg(h) for h in report.histograms),
        "</section>",
        f'<section id="kept"><h2>Kept samples ({len(report.kept)} drawn at random)</h2>',
        _grid(report.kept),
        '</section><section id="filters"><h2>What each filter dropped, and why</h2>',
    ]
    for number, (spec, samples) in enumerate(report.dropped.items()):
        counts = filters.get(spec, {})
        summary = f"{counts.get('in', 0):,} in, {counts.get('kept', 0):,} kept, {counts.get('dropped', 0):,} dropped"
        shown = f"; {len(samples)} shown" if samples else ""
        parts += [
            f'<section class="filter" id="filter-{number}" data-filter="{escape(spec)}">',
            f"<h3><code>{escape(spec)}</code>: {summary}{shown}</h3>",
            _grid(samples) if samples else "<p>Dropped nothing.</p>",
            "</section>",
        ]
    parts.append('</section><section id="failures"><h2>Images that could not be fetched</h2>')
    if not report.failed:
        parts.append("<p>None.</p>" if facts.has_shards else "<p>This build has no image stage.</p>")
    for reason, samples in report.failed.items():
        parts += [f'<h3 data-reason="{escape(reason)}">{escape(reason)}</h3>', _grid(samples)]
    parts.append("</section>")
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{escape(title)}</title>\n'
        f"<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _counts_tables(report: Report) -> str:
    counts = report.facts.manifest["counts"]
    text, images = counts.get("text", {}), counts.get("images") or {}
    specs = report.facts.filter_specs
    rows = []
    for source, c in text.get("per_source", {}).items():
        drops = report.facts.drops.get(source, {})
        outcome = dict(images.get("per_source", {}).get(source, {}))
        fetched = outcome.pop("success", 0)
        rows.append(
            [
                source,
                c["captions"] + c["rejected"],
                c["captions"],
                *(drops.get(s, 0) for s in specs),
                fetched,
                reasons(outcome),
            ]
        )
    headers = ["source", "rows read", "kept", *(f"dropped by {s}" for s in specs), "images", "images failed"]
    splits = [[split, n] for split, n in report.facts.split_samples().items()]
    failures = [[reason, n] for reason, n in images.get("failed", {}).items()]
    html = "<h3>Per source</h3>" + _table(headers, rows)
    html += "<h3>Per split</h3>" + _table(["split", "samples"], splits)
    if images:
        html += "<h3>Image failures per reason</h3>" + (
            _table(["reason", "images"], failures) if failures else "<p>None.</p>"
        )
    return html


def _grid(samples: list[Sample]) -> str:
    return '<div class="grid">' + "".join(_figure(s) for s in samples) + "</div>"


def _figure(sample: Sample) -> str:
    image = (
        f'<img src="{sample.thumbnail}" alt="{escape(sample.caption[:80])}">'
        if sample.thumbnail
        else '<div class="noimage">no image</div>'
    )
    lines = [f'<p class="caption">{escape(sample.caption)}</p>']
    if sample.caption_orig and sample.caption_orig != sample.caption:
        lines.append(f'<p class="orig">original: {escape(sample.caption_orig)}</p>')
    if sample.scores:
        scores = " · ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in sample.scores.items())
        lines.append(f'<p class="meta">{escape(scores)}</p>')
    if sample.reason:
        lines.append(f'<p class="reason">{escape(sample.reason)}</p>')
    lines.append(f'<p class="meta">{escape(sample.source)} · {escape(sample.split or "")} · {escape(sample.key)}</p>')
    return f'<figure class="sample">{image}<figcaption>{"".join(lines)}</figcaption></figure>'


def _histogram_svg(histogram: Histogram, width: int = 520, height: int = 180) -> str:
    """A bar chart: one bar per bin, its count on hover."""
    left, bottom, top = 40, 30, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    peak = max(histogram.counts) or 1
    bar_w = plot_w / len(histogram.counts)
    bars = []
    for i, count in enumerate(histogram.counts):
        h = plot_h * count / peak
        lo, hi = histogram.edges[i], histogram.edges[i + 1]
        bars.append(
            f'<rect class="bar" x="{left + i * bar_w:.1f}" y="{top + plot_h - h:.1f}" width="{max(bar_w - 1, 1):.1f}" '
            f'height="{h:.1f}"><title>[{lo:g}, {hi:g}): {count}</title></rect>'
        )
    axis = (
        f'<text x="{left}" y="{height - 10}">{histogram.edges[0]:g}</text>'
        f'<text x="{width - 10}" y="{height - 10}" text-anchor="end">{histogram.edges[-1]:g}</text>'
        f'<text x="{left - 5}" y="{top + 10}" text-anchor="end">{peak}</text>'
        f'<text x="{left - 5}" y="{top + plot_h}" text-anchor="end">0</text>'
    )
    return (
        f"<figure><figcaption>{escape(histogram.title)}</figcaption>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(histogram.title)}">{"".join(bars)}{axis}</svg></figure>'
    )
