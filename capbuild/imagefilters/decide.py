"""Which samples the image filters drop, decided once over every shard in order (splits in the
build's order, the caption table's order within a split): each filter judges the samples that the
filters before it kept. Embeddings are read one shard at a time."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from capbuild.imagefilters.embed import ORIG_COLUMN, embedding_path, matrix, read_embeddings
from capbuild.imagefilters.hashing import HashDedup, binary_index, hash_bytes, nearest_within
from capbuild.imagefilters.neardup import (
    EXACT_LIMIT,
    RECALL_QUERIES,
    TRAIN_PER_LIST,
    EmbeddingDedup,
    NearDupIndex,
    measure_recall,
)
from capbuild.imagefilters.specs import ClipScore, ClipTop, DecontaminateImages, ImageFilterSpec, NearDup, PHash

HISTOGRAM_EDGES = np.round(np.linspace(-1.0, 1.0, 41), 2)  # bins of 0.05 over the cosine's range


@dataclass
class Samples:
    """Every sample of the shards in order, with what the filters judge."""

    shards: list[Path]
    splits: list[str]  # one per shard
    keys: list[str] = field(default_factory=list)
    shard_of: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    phash: list[str | None] = field(default_factory=list)
    clip_score: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # NaN: not scored
    fallback: int = 0  # rows scored on `caption` for want of a caption_orig

    def rows(self, shard_no: int) -> np.ndarray:
        return np.flatnonzero(self.shard_of == shard_no)


def load_samples(
    shards: list[Path], splits: list[str], keys: list[list[str]], folder: Path, scored: str | None
) -> Samples:
    """Keys and hashes of every shard, and the clip score against `scored` (caption or caption_orig)
    where a model ran; `keys` are each shard's current keys."""
    samples = Samples(shards, splits)
    scores: list[np.ndarray] = []
    shard_of: list[np.ndarray] = []
    for shard_no, shard in enumerate(shards):
        columns = ["phash"]
        if scored is not None:
            columns += ["image_embedding", "text_embedding"] + ([ORIG_COLUMN] if scored == "caption_orig" else [])
        table = read_embeddings(embedding_path(folder, shard), keys[shard_no], columns)
        samples.keys += keys[shard_no]
        samples.phash += table["phash"].to_pylist()
        shard_of.append(np.full(len(table), shard_no, np.int32))
        if scored is None:
            continue
        images, valid = matrix(table["image_embedding"])
        texts, _ = matrix(table["text_embedding"])
        if scored == "caption_orig":
            origs, has_orig = matrix(table[ORIG_COLUMN])
            texts = np.where(has_orig[:, None], origs, texts)
            samples.fallback += int((valid & ~has_orig).sum())
        score = np.einsum("ij,ij->i", images.astype(np.float32), texts.astype(np.float32))
        scores.append(np.where(valid, score, np.nan).astype(np.float32))
    samples.shard_of = np.concatenate(shard_of) if shard_of else np.zeros(0, np.int32)
    total = len(samples.keys)
    samples.clip_score = np.concatenate(scores) if scores else np.full(total, np.nan, np.float32)
    return samples


@dataclass
class Decisions:
    """The first filter that dropped each sample (None: kept) and the value it judged."""

    filters: list[str | None]
    values: list[str | None]
    report: dict[str, Any]


def decide(
    samples: Samples,
    filters: list[ImageFilterSpec],
    folder: Path,
    eval_hashes: dict[str, tuple[list[str], list[str]]],
) -> Decisions:
    """Run the filters in order over the samples; `eval_hashes` maps an eval build to (keys, hashes)."""
    total = len(samples.keys)
    alive = np.ones(total, bool)
    dropped_by: list[str | None] = [None] * total
    values: list[str | None] = [None] * total
    report: dict[str, Any] = {"samples": total, "filters": []}

    def drop(position: int, spec: ImageFilterSpec, value: str) -> None:
        alive[position] = False
        dropped_by[position], values[position] = spec.describe(), value

    for spec in filters:
        before = int(alive.sum())
        extra: dict[str, Any] = {}
        if isinstance(spec, ClipScore):
            for position in np.flatnonzero(alive & (samples.clip_score < spec.minimum)):
                drop(int(position), spec, f"{samples.clip_score[position]:.4f}")
        elif isinstance(spec, ClipTop):
            extra = _clip_top(samples, spec, alive, drop)
        elif isinstance(spec, PHash):
            dedup = HashDedup(spec.distance)
            candidates = np.flatnonzero(alive & np.array([h is not None for h in samples.phash], bool))
            verdicts = dedup.offer(candidates, hash_bytes([samples.phash[p] for p in candidates]))
            for position, verdict in zip(candidates, verdicts, strict=True):
                if verdict is not None:
                    drop(int(position), spec, f"{samples.keys[verdict[0]]} d={verdict[1]}")
        elif isinstance(spec, NearDup):
            extra = _near_dup(samples, spec, alive, folder, drop)
        elif isinstance(spec, DecontaminateImages):
            eval_keys, eval_hex = eval_hashes[spec.eval_out]
            index = binary_index(spec.distance)
            index.add(hash_bytes(eval_hex))
            candidates = np.flatnonzero(alive & np.array([h is not None for h in samples.phash], bool))
            ids, distances = nearest_within(index, hash_bytes([samples.phash[p] for p in candidates]), spec.distance)
            for position, found, distance in zip(candidates, ids, distances, strict=True):
                if found >= 0:
                    drop(int(position), spec, f"{eval_keys[found]} d={distance}")
            extra = {"eval_images": len(eval_keys)}
        report["filters"].append({"filter": spec.describe(), "dropped": before - int(alive.sum()), **extra})
    report["kept"] = int(alive.sum())
    report["per_split"] = _per_split(samples, alive)
    if not np.isnan(samples.clip_score).all():
        report["clip_score"] = {
            "fallback_to_caption": samples.fallback,
            "histogram": histogram(samples.clip_score),
            "mean": round(float(np.nanmean(samples.clip_score)), 4),
        }
    return Decisions(dropped_by, values, report)


def _clip_top(samples: Samples, spec: ClipTop, alive: np.ndarray, drop) -> dict[str, Any]:
    cutoffs: dict[str, float] = {}
    splits = np.array([samples.splits[s] for s in samples.shard_of], dtype=object)
    for split in dict.fromkeys(samples.splits):
        members = np.flatnonzero(alive & (splits == split) & ~np.isnan(samples.clip_score))
        keep = math.floor(spec.fraction * len(members) + 0.5)
        ranked = members[np.lexsort((members, -samples.clip_score[members]))]  # best first; ties: earliest
        if keep:
            cutoffs[split] = round(float(samples.clip_score[ranked[keep - 1]]), 4)
        for position in ranked[keep:]:
            drop(int(position), spec, f"{samples.clip_score[position]:.4f} < top {spec.fraction:g} of {split}")
    return {"cutoffs": cutoffs}


def _near_dup(samples: Samples, spec: NearDup, alive: np.ndarray, folder: Path, drop) -> dict[str, Any]:
    def blocks(positions_wanted: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for shard_no, shard in enumerate(samples.shards):
            rows = samples.rows(shard_no)
            keep = np.isin(rows, positions_wanted)
            if not keep.any():
                continue
            keys = [samples.keys[r] for r in rows[keep]]
            vectors, _ = matrix(
                read_embeddings(embedding_path(folder, shard), keys, ["image_embedding"])["image_embedding"]
            )
            yield rows[keep], vectors

    candidates = np.flatnonzero(alive & ~np.isnan(samples.clip_score))  # NaN: undecodable, never embedded
    dim = next((v.shape[1] for _, v in blocks(candidates[:1])), 1)
    step = max(1, len(candidates) // RECALL_QUERIES)
    train = None
    if len(candidates) > EXACT_LIMIT:
        wanted = int(4 * math.sqrt(len(candidates))) * TRAIN_PER_LIST
        train = np.concatenate([v for _, v in blocks(candidates[:: max(1, len(candidates) // wanted)])])
    dedup = EmbeddingDedup(spec.cosine, NearDupIndex(dim, len(candidates), train))
    for positions, vectors in blocks(candidates):
        for position, verdict in zip(positions, dedup.offer(positions, vectors), strict=True):
            if verdict is not None:
                drop(int(position), spec, f"{samples.keys[verdict[0]]} cos={verdict[1]:.4f}")
    extra = dedup.index.describe()
    if not dedup.index.exact:
        queries = np.concatenate([v for _, v in blocks(candidates[::step][:RECALL_QUERIES])]).astype(np.float32)
        kept = np.array(sorted(dedup.kept), np.int64)
        extra.update(measure_recall(dedup, lambda: (v for _, v in blocks(kept)), queries))
    return extra


def _per_split(samples: Samples, alive: np.ndarray) -> dict[str, dict[str, int]]:
    result: dict[str, Counter[str]] = {}
    for shard_no, split in enumerate(samples.splits):
        rows = samples.rows(shard_no)
        counts = result.setdefault(split, Counter())
        counts["before"] += len(rows)
        counts["after"] += int(alive[rows].sum())
    return {split: dict(counts) for split, counts in result.items()}


def histogram(scores: np.ndarray) -> dict[str, int]:
    """Counts per 0.05-wide bin of cosine ("0.20": scores in [0.20, 0.25)), empty bins left out."""
    values = scores[~np.isnan(scores)]
    counts, _ = np.histogram(np.clip(values, -1.0, 0.9999), bins=HISTOGRAM_EDGES)
    return {f"{edge:.2f}": int(c) for edge, c in zip(HISTOGRAM_EDGES[:-1], counts, strict=True) if c}


def decisions_table(samples: Samples, decisions: Decisions) -> pa.Table:
    """One row per sample: key, shard, split, phash, clip_score, filter, filter_value."""
    return pa.table(
        {
            "key": pa.array(samples.keys, pa.string()),
            "shard": pa.array([samples.shards[s].name for s in samples.shard_of], pa.string()),
            "split": pa.array([samples.splits[s] for s in samples.shard_of], pa.string()),
            "phash": pa.array(samples.phash, pa.string()),
            "clip_score": pa.array(samples.clip_score, pa.float32(), from_pandas=True),
            "filter": pa.array(decisions.filters, pa.string()),
            "filter_value": pa.array(decisions.values, pa.string()),
        }
    )
