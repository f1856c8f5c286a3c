"""64-bit perceptual hashes (pHash) and the greedy Hamming-distance dedup over them.

A hash travels as 16 hex digits (the caption table, KEY.json) and as 8 bytes (faiss binary indexes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

HASH_BYTES = 8
BLOCK = 4096
# Up to this distance, multi-index hashing (pigeonhole over distance+1 bit blocks) finds every hash
# within reach exactly and fast; beyond it the blocks get too short to prune and a flat scan is used.
MULTI_HASH_MAX_DISTANCE = 15
# The pHash of imagehash (DCT-II of a 32x32 grayscale, its 8x8 lowest frequencies against their median),
# taken of a thumbnail made on the tensor: an antialiased bilinear resize of the RGB image to 32x32,
# then PIL's grayscale. imagehash resizes with PIL's Lanczos, which costs as much as decoding the image,
# and runs per image in Python; the thumbnail costs a tenth of that, and a batch is hashed in one
# matrix product.
# The hash equals imagehash.phash of the thumbnail bit for bit and stays within a few bits of
# imagehash.phash of the full image. Saved hashes carry PHASH_METHOD, so a file hashed another way
# is never reused.
PHASH_METHOD = "imagehash.phash(gray(bilinear_antialias_32x32(rgb)))"
THUMBNAIL_SIDE = 32
# The first 8 rows of the unnormalised DCT-II matrix of 32 points (scipy's and imagehash's DCT): one
# product with a whole batch of thumbnails gives their 8x8 lowest frequencies, with nothing but numpy.
LOW_DCT = 2 * np.cos(np.pi * np.arange(8)[:, None] * (2 * np.arange(THUMBNAIL_SIDE) + 1) / (2 * THUMBNAIL_SIDE))


def phash_thumbnail(pixels: torch.Tensor) -> torch.Tensor:
    """RGB uint8 (3, H, W) -> the (3, 32, 32) uint8 thumbnail that `phash_hexes` hashes."""
    side = (THUMBNAIL_SIDE, THUMBNAIL_SIDE)
    return torch.nn.functional.interpolate(pixels[None], size=side, mode="bilinear", antialias=True)[0]


def phash_hexes(thumbnails: list[torch.Tensor]) -> list[str]:
    """The 64-bit pHashes of `phash_thumbnail`s, as 16 hex digits each, in one matrix product."""
    if not thumbnails:
        return []
    rgb = torch.stack(thumbnails).numpy().astype(np.uint32)
    gray = (rgb[:, 0] * 19595 + rgb[:, 1] * 38470 + rgb[:, 2] * 7471 + 0x8000) >> 16  # PIL's convert("L")
    low = LOW_DCT @ gray.astype(np.float64) @ LOW_DCT.T  # (N, 8, 8): a DCT's lowest frequencies
    low = low.reshape(len(gray), -1)
    bits = low > np.median(low, axis=1, keepdims=True)
    return [row.tobytes().hex() for row in np.packbits(bits, axis=1)]


def phash_hex(image: Image.Image | torch.Tensor) -> str:
    """The pHash of one decoded image (PIL, or RGB uint8 (3, H, W)) as 16 hex digits."""
    pixels = TF.pil_to_tensor(image.convert("RGB")) if isinstance(image, Image.Image) else image
    return phash_hexes([phash_thumbnail(pixels)])[0]


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
