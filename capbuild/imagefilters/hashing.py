"""64-bit perceptual hashes (pHash) and the greedy Hamming-distance dedup over them.

A hash travels as 16 hex digits (the caption table, KEY.json) and as 8 bytes (faiss binary indexes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

HASH_BYTES = 8
BLOCK = 4096
# Up to this distance, multi-index hashing (pigeonhole over distance+1 bit blocks) finds every hash
# within reach exactly and fast; beyond it the blocks get too short to prune and a flat scan is used.
MULTI_HASH_MAX_DISTANCE = 15
# imagehash.phash resizes the image to 32x32 with Lanczos, which costs 0.5 ms on a 256 px image, as much
# as decoding it. A box reduce by an integer factor down to at least twice that side first (Pillow's
# `reducing_gap` idea) makes the whole hash about 2x faster (benchmarks/imagefilter_pass.py); it moves
# at most 2 of the 64 bits on the test pictures. Saved hashes carry this name, so a file hashed
# another way is never reused.
PHASH_METHOD = "imagehash.phash(gray.reduce(min_side // 64))"
PHASH_REDUCED_SIDE = 64


def phash_hex(image: Image.Image) -> str:
    """The 64-bit pHash of a decoded image as 16 hex digits: imagehash's DCT hash of its grayscale,
    box-reduced by an integer factor to no less than 64 px first (see PHASH_METHOD)."""
    import imagehash

    gray = image.convert("L")
    factor = min(gray.size) // PHASH_REDUCED_SIDE
    return str(imagehash.phash(gray.reduce(factor) if factor > 1 else gray))


def hash_bytes(hexes: list[str]) -> np.ndarray:
    """Hex hashes -> (N, 8) uint8, as faiss binary indexes take them."""
    if not hexes:
        return np.zeros((0, HASH_BYTES), np.uint8)
    return np.frombuffer(bytes.fromhex("".join(hexes)), np.uint8).reshape(-1, HASH_BYTES)


def hamming_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances of (N, 8) and (M, 8) uint8 hashes."""
    left, right = a.view(">u8").ravel(), b.view(">u8").ravel()
    return np.bitwise_count(left[:, None] ^ right[None, :]).astype(np.int32)


def binary_index(distance: int):  # -> faiss.IndexBinary
    """An empty 64-bit binary index that finds every hash within `distance` exactly."""
    import faiss

    if distance > MULTI_HASH_MAX_DISTANCE:
        return faiss.IndexBinaryFlat(64)
    blocks = distance + 1
    return faiss.IndexBinaryMultiHash(64, blocks, 64 // blocks)


def nearest_within(index, queries: np.ndarray, distance: int) -> tuple[np.ndarray, np.ndarray]:
    """For each query, the closest indexed hash within `distance` (ties: the earliest added):
    (ids, distances), id -1 where none is."""
    ids = np.full(len(queries), -1, np.int64)
    best = np.full(len(queries), 64, np.int32)
    if index.ntotal == 0 or len(queries) == 0:
        return ids, best
    limits, distances, labels = index.range_search(queries, distance + 1)  # faiss: strictly below the radius
    for row in range(len(queries)):
        start, end = int(limits[row]), int(limits[row + 1])
        if start == end:
            continue
        found = np.lexsort((labels[start:end], distances[start:end]))[0]
        ids[row], best[row] = labels[start + found], int(distances[start + found])
    return ids, best


@dataclass
class HashDedup:
    """Greedy dedup in the order samples are offered: a hash within `distance` of an earlier kept hash
    is a duplicate of the closest one (ties: the earliest); state spans every call."""

    distance: int

    def __post_init__(self) -> None:
        self.index = binary_index(self.distance)
        self.kept: list[int] = []  # position of each indexed hash

    def offer(self, positions: np.ndarray, hashes: np.ndarray) -> list[tuple[int, int] | None]:
        """Judge a run of samples in order: (position of the kept duplicate, distance) or None if kept."""
        verdicts: list[tuple[int, int] | None] = []
        for start in range(0, len(hashes), BLOCK):
            verdicts.extend(self._block(positions[start : start + BLOCK], hashes[start : start + BLOCK]))
        return verdicts

    def _block(self, positions: np.ndarray, hashes: np.ndarray) -> list[tuple[int, int] | None]:
        earlier_ids, earlier_dist = nearest_within(self.index, hashes, self.distance)
        pairwise = hamming_matrix(hashes, hashes)
        kept_rows: list[int] = []
        verdicts: list[tuple[int, int] | None] = []
        for row in range(len(hashes)):
            best: tuple[int, int] | None = None
            if earlier_ids[row] >= 0:
                best = (int(earlier_dist[row]), self.kept[earlier_ids[row]])
            if kept_rows:
                candidates = pairwise[row, kept_rows]
                closest = int(np.argmin(candidates))
                if candidates[closest] <= self.distance and (best is None or candidates[closest] < best[0]):
                    best = (int(candidates[closest]), int(positions[kept_rows[closest]]))
            if best is None:
                kept_rows.append(row)
                verdicts.append(None)
            else:
                verdicts.append((best[1], best[0]))
        if kept_rows:
            self.index.add(np.ascontiguousarray(hashes[kept_rows]))
            self.kept.extend(int(positions[r]) for r in kept_rows)
        return verdicts
