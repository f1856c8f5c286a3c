"""What the image filters did, for the dataset card and the report: their runs as the manifest
records them (capbuild.imagefilters), and the samples to show from rejected/images and the shards."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capbuild.cards.card import md_table
from capbuild.cards.facts import BuildFacts, read_columns
from capbuild.cards.report import Sample, thumbnail
from capbuild.images.shards import stream_samples
from capbuild.layout import BuildLayout

BAR_WIDTH = 40
CLIP_FILTERS = ("clip_score", "clip_top")


def image_filter_runs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The image-filter runs of a build, oldest first (none when it ran no image filter)."""
    return list(manifest.get("counts", {}).get("image_filters") or [])


def image_filter_specs(manifest: dict[str, Any]) -> set[str]:
    """Every image filter spec of every run (the `filter` value of the rows they dropped)."""
    return {f["filter"] for run in image_filter_runs(manifest) for f in run["filters"]}


def image_filters_section(facts: BuildFacts) -> str:
    """The card's "Image filters" section: per run, the score model, drops per filter, per split,
    and a histogram of the CLIP score."""
    runs = image_filter_runs(facts.manifest)
    if not runs:
        return ""
    parts = [
        "## Image filters\n\nAfter the image stage, one pass of a CLIP-like model (and a 64-bit pHash of every "
        "image) judged each sample; filters apply in order, each to what the ones before it kept. Dropped "
        "samples keep their images in `rejected/images/` (KEY.json names the filter and the value) and their "
        "rows in `rejected/`; the embeddings are in `embeddings/` (not published)."
    ]
    for run in runs:
        model = run.get("score_model")
        used = f"score model `{model['name']}` (fingerprint `{model['fingerprint']}`)" if model else "no score model"
        rows = [[f"`{f['filter']}`", f["dropped"], _details(f)] for f in run["filters"]]
        splits = [[s, c["before"], c["after"]] for s, c in run.get("per_split", {}).items()]
        parts.append(
            f"### Run {run['run']}: {run['samples']:,} samples in, {run['kept']:,} kept ({used})\n\n"
            + md_table(["filter", "dropped", "details"], rows)
            + "\n\n"
            + md_table(["split", "samples before", "after"], splits)
        )
        clip = run.get("clip_score")
        if clip:
            text = next((f["filter"].partition(":")[2] for f in run["filters"] if ":caption" in f["filter"]), "")
            note = (
                f" Scored against `caption_orig`; {clip['fallback_to_caption']:,} rows without one were scored on "
                "`caption`."
                if text == "caption_orig"
                else ""
            )
            parts.append(f"CLIP score (cosine of image and caption), mean {clip['mean']}.{note}\n\n" + _bars(clip))
    return "\n\n".join(parts)


def _details(figures: dict[str, Any]) -> str:
    shown = {k: v for k, v in figures.items() if k not in ("filter", "dropped")}
    return ", ".join(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in shown.items())


def _bars(clip: dict[str, Any]) -> str:
    histogram = clip["histogram"]
    peak = max(histogram.values(), default=1)
    lines = [
        f"{float(edge):5.2f} {'#' * max(1, round(BAR_WIDTH * n / peak)):<{BAR_WIDTH}} {n:,}"
        for edge, n in histogram.items()
    ]
    return "```text\nbin start (width 0.05)\n" + "\n".join(lines) + "\n```"


@dataclass
class ImageFilterView:
    """One image filter in the report: examples of what it dropped, and kept samples beside them
    (the lowest-scoring kept ones for a CLIP-score filter, the kept originals for a dedup)."""

    spec: str
    dropped_count: int
    dropped: list[Sample] = field(default_factory=list)
    kept: list[Sample] = field(default_factory=list)
    kept_title: str = ""


def image_filter_views(
    facts: BuildFacts, per_group: int, rng: random.Random, thumbnails: bool
) -> list[ImageFilterView]:
    """A view per image filter of the latest run that names it."""
    figures = {f["filter"]: f for run in image_filter_runs(facts.manifest) for f in run["filters"]}
    if not figures:
        return []
    dropped: dict[str, list[Sample]] = {spec: [] for spec in figures}
    for tar in sorted((BuildLayout(facts.out).rejected_images).glob("*.tar")):
        for key, fields in stream_samples(tar):
            meta = json.loads(fields.get("json", b"{}"))
            if meta.get("filter") in dropped:
                dropped[meta["filter"]].append(_sample(key, fields, meta, thumbnails=False))
    views = []
    for spec, samples in dropped.items():
        chosen = sorted(rng.sample(samples, min(per_group, len(samples))), key=lambda s: s.key)
        view = ImageFilterView(spec, figures[spec]["dropped"], chosen)
        name = spec.partition("=")[0]
        if name in CLIP_FILTERS:
            view.kept_title = "kept samples scored lowest (nearest the threshold)"
            view.kept = _lowest_kept(facts, per_group, thumbnails)
        elif name in ("near_dup", "phash"):
            view.kept_title = "the images they duplicate (kept by this filter)"
            wanted = {s.reason.split(" ")[0] for s in chosen if s.reason}
            paths = BuildLayout(facts.out)
            folders = [paths.shards, paths.rejected_images]  # a later filter may have dropped the original
            view.kept = list(samples_by_key(folders, wanted, thumbnails).values())
        views.append(view)
    if thumbnails:  # thumbnails of the chosen dropped ones only
        for view in views:
            found = samples_by_key([BuildLayout(facts.out).rejected_images], {s.key for s in view.dropped}, True)
            view.dropped = [found.get(s.key, s) for s in view.dropped]
    return views


def _lowest_kept(facts: BuildFacts, count: int, thumbnails: bool) -> list[Sample]:
    table = read_columns(BuildLayout(facts.out).captions, ("key", "clip_score"))
    if "clip_score" not in table.column_names:
        return []
    rows = [r for r in table.to_pylist() if r["clip_score"] is not None]
    lowest = {r["key"] for r in sorted(rows, key=lambda r: (r["clip_score"], r["key"]))[:count]}
    found = samples_by_key([BuildLayout(facts.out).shards], lowest, thumbnails)
    return sorted(found.values(), key=lambda s: s.scores.get("clip_score", 0))


def samples_by_key(folders: list[Path], keys: set[str], thumbnails: bool) -> dict[str, Sample]:
    """The samples of these keys in the tars of the folders, read until all are found."""
    found: dict[str, Sample] = {}
    for tar in (tar for folder in folders for tar in sorted(folder.glob("*.tar"))):
        if len(found) == len(keys):
            break
        for key, fields in stream_samples(tar):
            if key in keys:
                found[key] = _sample(key, fields, json.loads(fields.get("json", b"{}")), thumbnails)
    return found


def _sample(key: str, fields: dict[str, bytes], meta: dict[str, Any], thumbnails: bool) -> Sample:
    scores = {k: meta[k] for k in ("clip_score", "phash") if meta.get(k) is not None}
    return Sample(
        key=key,
        source=meta.get("source", ""),
        split=meta.get("split"),
        caption=fields.get("txt", b"").decode("utf-8"),
        caption_orig=meta.get("caption_orig"),
        scores=scores,
        reason=meta.get("filter_value"),
        thumbnail=thumbnail(fields["jpg"]) if thumbnails and "jpg" in fields else None,
    )
