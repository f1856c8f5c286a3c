"""Ranking metrics on similarity matrices: MRR@k as clip-italian defines it, Recall@k, mAP, top-k accuracy.

Tie rule: a tie counts against the model. Within a group of equal scores the non-relevant
candidates rank before the relevant ones, so a model that gives every candidate the same score
gets the worst rank, never the best.
"""

from __future__ import annotations

import numpy as np

from capbuild.errors import ConfigError

KS = (1, 5, 10)
CHUNK = 1024  # queries ranked at once (bounds the memory of the sort)


def _first_hits_and_ap(scores: np.ndarray, relevant: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query: 1-based rank of the first relevant candidate, and average precision."""
    order = np.lexsort((relevant, -scores), axis=-1)  # by score descending, then non-relevant first
    hits = np.take_along_axis(relevant, order, axis=-1)
    first = hits.argmax(axis=-1) + 1
    found = np.cumsum(hits, axis=-1)
    precision = found / np.arange(1, hits.shape[1] + 1)
    ap = (precision * hits).sum(axis=-1) / hits.sum(axis=-1)
    return first, ap


def ranking_metrics(scores: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    """Metrics of queries (rows) over candidates (columns); every row needs at least one relevant column.

    MRR@k: mean over queries of 1/rank of the first relevant candidate when that rank is <= k, else 0.
    Recall@k: share of queries with a relevant candidate in the top k. mAP: mean average precision over
    all relevant candidates (with one relevant candidate per query it equals the unbounded MRR).
    """
    scores = np.asarray(scores)  # float32 from the model stays float32: captions x images can be large
    relevant = np.asarray(relevant, dtype=bool)
    if scores.shape != relevant.shape or scores.ndim != 2:
        raise ConfigError(f"scores {scores.shape} and relevant {relevant.shape} must be the same 2-D shape")
    if not relevant.any(axis=1).all():
        raise ConfigError("every query needs at least one relevant candidate")
    parts = [_first_hits_and_ap(scores[i : i + CHUNK], relevant[i : i + CHUNK]) for i in range(0, len(scores), CHUNK)]
    first = np.concatenate([p[0] for p in parts])
    ap = np.concatenate([p[1] for p in parts])
    result: dict[str, float] = {}
    for k in ks:
        result[f"MRR@{k}"] = float(np.where(first <= k, 1.0 / first, 0.0).mean())
    for k in ks:
        result[f"R@{k}"] = float((first <= k).mean())
    result["mAP"] = float(ap.mean())
    return result


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 5, 10, 100)) -> dict[str, float]:
    """Zero-shot accuracy: share of images whose true class is among the k best-scoring classes (ties
    against the model). Only the k that are below the number of classes are reported."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    true = scores[np.arange(len(labels)), labels][:, None]
    rank = (scores >= true).sum(axis=1)
    return {f"top{k}": float((rank <= k).mean()) for k in ks if k < scores.shape[1]}
