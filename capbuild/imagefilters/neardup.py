"""Near-duplicate images by embedding cosine: greedy in sample order against a faiss index of the
images kept so far. Up to EXACT_LIMIT images the index is exact (a flat inner-product scan of the
saved float16 embeddings widened to float32: at most EXACT_LIMIT x dim x 4 bytes); beyond, an IVF
index over float16 codes, trained on a sample, whose recall@1 against exact search is measured on
sampled queries and reported in the manifest. Embeddings are read one shard at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BLOCK = 2048
# A flat scan costs O(N^2) over the run: on 2 busy CPU cores 50,000 512-d vectors took 2 minutes and the IVF
# index was already faster (BENCHMARKS.md, "near_dup"); past 100,000 the IVF index keeps the pass near O(N sqrt N).
EXACT_LIMIT = 100_000
RECALL_QUERIES = 1000
TRAIN_PER_LIST = 40


@dataclass
class NearDupIndex:
    """The kept images' embeddings, searchable for the best inner product."""

    dim: int
    total: int
    train_sample: np.ndarray | None = None
    exact: bool = field(init=False)

    def __post_init__(self) -> None:
        import faiss

        self.exact = self.total <= EXACT_LIMIT or self.train_sample is None
        if self.exact:
            self.index = faiss.IndexFlatIP(self.dim)  # BLAS; 4x faster here than a flat scan over float16
            return
        self.lists = max(1, min(int(4 * np.sqrt(self.total)), len(self.train_sample) // TRAIN_PER_LIST))
        quantizer = faiss.IndexFlatIP(self.dim)
        self.index = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, self.lists, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        self.index.train(np.ascontiguousarray(self.train_sample, np.float32))
        self.index.nprobe = min(self.lists, 16)
        self.quantizer = quantizer  # faiss does not own it from Python

    def best(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cosine, id) of each vector's best indexed match; id -1 where the index is empty."""
        if self.index.ntotal == 0:
            return np.full(len(vectors), -np.inf, np.float32), np.full(len(vectors), -1, np.int64)
        scores, ids = self.index.search(np.ascontiguousarray(vectors, np.float32), 1)
        return scores[:, 0], ids[:, 0]

    def describe(self) -> dict[str, Any]:
        if self.exact:
            return {"index": "exact (flat inner product)", "exact_limit": EXACT_LIMIT}
        return {"index": f"IVF{self.lists},SQfp16 nprobe={self.index.nprobe}", "exact_limit": EXACT_LIMIT}


@dataclass
class EmbeddingDedup:
    """Greedy near-dup over (position, vector) runs offered in order; a vector whose cosine with an
    earlier kept one is >= `cosine` duplicates the most similar (ties: the earliest)."""

    cosine: float
    index: NearDupIndex
    kept: list[int] = field(default_factory=list)

    def offer(self, positions: np.ndarray, vectors: np.ndarray) -> list[tuple[int, float] | None]:
        verdicts: list[tuple[int, float] | None] = []
        for start in range(0, len(vectors), BLOCK):
            verdicts.extend(self._block(positions[start : start + BLOCK], vectors[start : start + BLOCK]))
        return verdicts

    def _block(self, positions: np.ndarray, vectors: np.ndarray) -> list[tuple[int, float] | None]:
        vectors = np.ascontiguousarray(vectors, np.float32)
        earlier_scores, earlier_ids = self.index.best(vectors)
        pairwise = vectors @ vectors.T
        kept_rows: list[int] = []
        verdicts: list[tuple[int, float] | None] = []
        for row in range(len(vectors)):
            best: tuple[float, int] | None = None
            if earlier_ids[row] >= 0 and earlier_scores[row] >= self.cosine:
                best = (float(earlier_scores[row]), self.kept[earlier_ids[row]])
            if kept_rows:
                candidates = pairwise[row, kept_rows]
                top = int(np.argmax(candidates))
                if candidates[top] >= self.cosine and (best is None or candidates[top] > best[0]):
                    best = (float(candidates[top]), int(positions[kept_rows[top]]))
            if best is None:
                kept_rows.append(row)
                verdicts.append(None)
            else:
                verdicts.append((best[1], best[0]))
        if kept_rows:
            self.index.index.add(vectors[kept_rows])
            self.kept.extend(int(positions[r]) for r in kept_rows)
        return verdicts


def measure_recall(
    dedup: EmbeddingDedup, kept_blocks: Callable[[], Iterator[np.ndarray]], queries: np.ndarray
) -> dict[str, Any]:
    """Recall@1 of the final index against an exact blockwise scan of the kept vectors (streamed
    again, never all in memory as float32) for sampled query vectors."""
    approx_scores, approx_ids = dedup.index.best(queries)
    best_scores = np.full(len(queries), -np.inf, np.float32)
    best_ids = np.full(len(queries), -1, np.int64)
    offset = 0
    for block in kept_blocks():
        scores = queries @ np.asarray(block, np.float32).T
        top = np.argmax(scores, axis=1)
        top_scores = scores[np.arange(len(queries)), top]
        better = top_scores > best_scores
        best_scores[better], best_ids[better] = top_scores[better], offset + top[better]
        offset += len(block)
    same = (approx_ids == best_ids) | np.isclose(approx_scores, best_scores, atol=1e-6)
    return {"recall_at_1": round(float(same.mean()), 4) if len(queries) else None, "recall_queries": len(queries)}
