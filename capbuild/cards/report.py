"""`capbuild inspect`: what is in a build, to look at. Random kept samples (read from the shards),
what each filter dropped and why, images that failed, histograms of caption length and PROPN
ratio, counts per source. As one self-contained HTML file, or as a summary in the terminal."""

from __future__ import annotations

import base64
import io
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image, UnidentifiedImageError

from capbuild.cards.facts import BuildFacts, CaptionStats, load_facts, read_columns
from capbuild.images.failures import failure_reason
from capbuild.images.shards import stream_samples
from capbuild.layout import BuildLayout
from capbuild.stages.text.steps import parse_spec

THUMBNAIL_SIDE = 128
SAMPLE_COLUMNS = ("key", "source", "split", "caption", "caption_orig", "image_url", "filter", "filter_value")


@dataclass
class Sample:
    """One row to show: its caption, original caption, scores, and a thumbnail as a data: URI."""

    key: str
    source: str
    split: str | None
    caption: str
    caption_orig: str | None
    scores: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    thumbnail: str | None = None


@dataclass
class Histogram:
    """Counts per bin [edges[i], edges[i+1])."""

    title: str
    edges: list[float]
    counts: list[int]


@dataclass
class Report:
    facts: BuildFacts
    kept: list[Sample]
    dropped: dict[str, list[Sample]]
    failed: dict[str, list[Sample]]
    histograms: list[Histogram]
    image_filters: list[Any] = field(default_factory=list)  # capbuild.cards.image_filters.ImageFilterView


def build_report(out: Path, samples: int = 24, per_group: int = 12, seed: int = 0, thumbnails: bool = True) -> Report:
    """Gather what the report shows; the same seed picks the same samples."""
    from capbuild.cards.image_filters import image_filter_views

    facts = load_facts(out)
    rng = random.Random(seed)
    if facts.has_shards:
        kept = _kept_from_shards(facts, samples, rng, thumbnails)
    else:
        kept = _kept_from_table(facts, samples, rng, thumbnails)
    return Report(
        facts=facts,
        kept=kept,
        dropped=_dropped(facts, per_group, rng, thumbnails),
        failed=_failed(facts, per_group, rng),
        histograms=caption_histograms(facts.captions),
        image_filters=image_filter_views(facts, per_group, rng, thumbnails),
    )


def thumbnail(data: bytes | Path) -> str | None:
    """A small JPEG as a data: URI (None when the image cannot be read)."""
    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            image = image.convert("RGB")
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=70)
    except (OSError, UnidentifiedImageError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _kept_from_shards(facts: BuildFacts, count: int, rng: random.Random, thumbnails: bool) -> list[Sample]:
    """`count` samples drawn uniformly from every shard, each shard streamed up to the last one needed."""
    shards = sorted(facts.sizes)
    offsets = np.cumsum([0] + [facts.sizes[s] for s in shards])
    picks = sorted(rng.sample(range(int(offsets[-1])), min(count, int(offsets[-1]))))
    wanted: dict[str, set[int]] = defaultdict(set)
    for pick in picks:
        shard = int(np.searchsorted(offsets, pick, side="right")) - 1
        wanted[shards[shard]].add(pick - int(offsets[shard]))
    kept = []
    for shard, indices in sorted(wanted.items()):
        position = 0
        for key, fields in stream_samples(BuildLayout(facts.out).shards / shard):
            if "jpg" not in fields:
                continue
            if position in indices:
                kept.append(_shard_sample({"__key__": key, **fields}, facts.score_names, thumbnails))
            position += 1
            if position > max(indices):
                break
    return kept


def _shard_sample(sample: dict[str, Any], scores: list[str], thumbnails: bool) -> Sample:
    meta = json.loads(sample["json"])
    return Sample(
        key=sample["__key__"],
        source=meta.get("source", ""),
        split=meta.get("split"),
        caption=sample["txt"].decode("utf-8"),
        caption_orig=meta.get("caption_orig"),
        scores=_scores(meta, scores),
        thumbnail=thumbnail(sample["jpg"]) if thumbnails else None,
    )


def _kept_from_table(facts: BuildFacts, count: int, rng: random.Random, thumbnails: bool) -> list[Sample]:
    table = read_columns(BuildLayout(facts.out).captions, (*SAMPLE_COLUMNS, *facts.score_names))
    chosen = sorted(rng.sample(range(table.num_rows), min(count, table.num_rows)))
    return [_row_sample(row, facts.score_names, thumbnails) for row in table.take(chosen).to_pylist()]


def _row_sample(row: dict[str, Any], scores: list[str], thumbnails: bool) -> Sample:
    return Sample(
        key=row["key"],
        source=row["source"],
        split=row.get("split"),
        caption=row.get("caption") or "",
        caption_orig=row.get("caption_orig"),
        scores=_scores(row, scores),
        reason=row.get("filter_value"),
        thumbnail=_local_thumbnail(row.get("image_url")) if thumbnails else None,
    )


def _scores(record: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """The step scores of a row or sample that read as one value (not lists)."""
    return {k: record[k] for k in names if record.get(k) is not None and not isinstance(record[k], list)}


def _local_thumbnail(url: str | None) -> str | None:
    """Thumbnail of a file:// image (remote images are never fetched for a report)."""
    if not url or not url.startswith("file://"):
        return None
    path = Path(url2pathname(urlparse(url).path))
    return thumbnail(path) if path.is_file() else None


def _dropped(facts: BuildFacts, per_group: int, rng: random.Random, thumbnails: bool) -> dict[str, list[Sample]]:
    """Every text filter of the build (in order) -> examples of the rows it dropped (the image
    filters' drops are shown with their images, see capbuild.cards.image_filters)."""
    from capbuild.cards.image_filters import image_filter_specs

    table = read_columns(BuildLayout(facts.out).rejected, (*SAMPLE_COLUMNS, *facts.score_names))
    image_specs = image_filter_specs(facts.manifest)
    spec_of = {parse_spec(spec)[0]: spec for spec in facts.filter_specs}
    rows_by_spec: dict[str, list[int]] = {spec: [] for spec in facts.filter_specs}
    if table.num_rows:
        for index, name in enumerate(table["filter"].to_pylist()):
            if name in image_specs:
                continue
            rows_by_spec.setdefault(spec_of.get(name, name), []).append(index)
    dropped = {}
    for spec, indices in rows_by_spec.items():
        chosen = sorted(rng.sample(indices, min(per_group, len(indices))))
        dropped[spec] = (
            [_row_sample(row, facts.score_names, thumbnails) for row in table.take(chosen).to_pylist()]
            if chosen
            else []
        )
    return dropped


def _failed(facts: BuildFacts, per_group: int, rng: random.Random) -> dict[str, list[Sample]]:
    """Failure reason -> examples of images img2dataset could not fetch (from its per-shard status)."""
    by_reason: dict[str, list[Sample]] = defaultdict(list)
    for shard in sorted(facts.sizes):
        status = BuildLayout(facts.out).shards / shard.replace(".tar", ".parquet")
        if not status.exists():
            continue
        table = pq.read_table(status)
        for row in table.filter(pc.not_equal(table["status"], "success")).to_pylist():
            reason = failure_reason(row.get("error_message"))
            sample = _row_sample({**row, "image_url": None}, facts.score_names, thumbnails=False)
            sample.reason = f"{row.get('error_message')} ({row.get('url')})"
            by_reason[reason].append(sample)
    return {
        reason: sorted(rng.sample(samples, min(per_group, len(samples))), key=lambda s: s.key)
        for reason, samples in sorted(by_reason.items())
    }


def caption_histograms(stats: CaptionStats) -> list[Histogram]:
    """Words per caption, and PROPN ratio when the table has it, over the kept captions."""
    if not stats.word_distribution:
        return []
    low, top = int(min(stats.word_distribution)), int(max(stats.word_distribution)) + 1
    edges = np.arange(low, top + 1) if top - low <= 40 else np.linspace(low, top, 31)
    histograms = [_histogram("Words per caption", stats.word_distribution, edges)]
    if stats.propn_distribution:
        title = "PROPN ratio (share of proper nouns)"
        histograms.append(_histogram(title, stats.propn_distribution, np.linspace(0, 1, 11)))
    return histograms


def _histogram(title: str, distribution: Counter[float], edges: np.ndarray) -> Histogram:
    values, weights = zip(*distribution.items(), strict=True)
    counts, edges = np.histogram(values, bins=edges, weights=weights)
    return Histogram(title, edges.tolist(), [int(c) for c in counts])
