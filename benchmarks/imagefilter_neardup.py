"""near_dup on random 512-d unit vectors stored as float16 shards: faiss exact vs blockwise numpy vs
the approximate (IVF) index, time and peak memory, and the IVF index's recall@1 against exact search.

Every variant runs the same greedy pass (each vector against the kept earlier ones, kept in order),
streaming the shards, in a fresh subprocess whose peak RSS is reported. 1 % of the vectors are
planted near-copies of earlier ones (in the same shard), so the pass has something to drop.

    .venv/bin/python benchmarks/imagefilter_neardup.py --vectors 50000 --variants exact numpy ivf
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DIM = 512
SHARD = 10_000
COSINE = 0.95


def write_shards(folder: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    for start in range(0, count, SHARD):
        block = rng.standard_normal((min(SHARD, count - start), DIM)).astype(np.float32)
        for row in range(100, len(block), 100):  # a near-copy of an earlier vector (same shard) every 100
            base = block[rng.integers(0, row)]
            block[row] = base + 0.1 * rng.standard_normal(DIM) / np.sqrt(DIM) * np.linalg.norm(base)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        np.save(folder / f"{start // SHARD:05d}.npy", block.astype(np.float16))


def shards(folder: Path):
    for path in sorted(folder.glob("*.npy")):
        yield np.load(path)


def run_faiss(folder: Path, count: int, approximate: bool) -> dict:
    from capbuild.imagefilters import neardup
    from capbuild.imagefilters.neardup import EmbeddingDedup, NearDupIndex, measure_recall

    if approximate:
        neardup.EXACT_LIMIT = 0
    train = None
    if approximate:
        step = max(1, count // (int(4 * np.sqrt(count)) * neardup.TRAIN_PER_LIST))
        train = np.concatenate([s[:: max(1, step)] for s in shards(folder)])
    started = time.perf_counter()
    dedup = EmbeddingDedup(COSINE, NearDupIndex(DIM, count, train))
    dropped, offset = 0, 0
    for block in shards(folder):
        verdicts = dedup.offer(np.arange(offset, offset + len(block)), block)
        dropped += sum(v is not None for v in verdicts)
        offset += len(block)
    result = {"seconds": time.perf_counter() - started, "dropped": dropped, **dedup.index.describe()}
    if approximate:  # recall@1 on 1,000 sampled queries, the kept vectors streamed again per shard
        kept = np.array(dedup.kept)
        step = max(1, count // 1000)
        queries = np.concatenate([s[(-i * SHARD) % step :: step] for i, s in enumerate(shards(folder))])[:1000]

        def kept_blocks():
            for number, shard in enumerate(shards(folder)):
                rows = kept[(kept >= number * SHARD) & (kept < (number + 1) * SHARD)] - number * SHARD
                yield shard[rows]

        result.update(measure_recall(dedup, kept_blocks, queries.astype(np.float32)))
    return result


def run_numpy(folder: Path, count: int) -> dict:
    """The obvious alternative: kept vectors in a growing float16 array, each block of 2,048 compared
    with all of them (in float32 chunks of 65,536) and with its own earlier rows."""
    started = time.perf_counter()
    kept = np.zeros((count, DIM), np.float16)
    size, dropped = 0, 0
    for shard in shards(folder):
        for start in range(0, len(shard), 2048):
            block = shard[start : start + 2048].astype(np.float32)
            best = np.full(len(block), -np.inf, np.float32)
            for chunk in range(0, size, 65_536):
                best = np.maximum(
                    best, (block @ kept[chunk : min(size, chunk + 65_536)].astype(np.float32).T).max(axis=1)
                )
            pairwise = block @ block.T
            rows: list[int] = []
            for row in range(len(block)):
                if best[row] >= COSINE or (rows and pairwise[row, rows].max() >= COSINE):
                    dropped += 1
                else:
                    rows.append(row)
            kept[size : size + len(rows)] = block[rows]
            size += len(rows)
    return {"seconds": time.perf_counter() - started, "dropped": dropped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=50_000)
    parser.add_argument("--variants", nargs="+", default=["exact", "numpy", "ivf"])
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, folder = args.child
        if variant == "numpy":
            result = run_numpy(Path(folder), args.vectors)
        else:
            result = run_faiss(Path(folder), args.vectors, approximate=variant == "ivf")
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        write_shards(Path(tmp), args.vectors)
        size = args.vectors * DIM * 2 / 2**20
        print(f"{args.vectors:,} vectors x {DIM} (float16 on disk: {size:.0f} MiB), cos >= {COSINE}")
        print("| variant | seconds | dropped | peak RSS (MiB) | index | recall@1 |\n|---|---:|---:|---:|---|---:|")
        for variant in args.variants:
            command = [sys.executable, __file__, "--vectors", str(args.vectors), "--child", variant, tmp]
            result = json.loads(
                subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
            )
            recall = result.get("recall_at_1", "")
            cells = [variant, f"{result['seconds']:.1f}", f"{result['dropped']:,}", f"{result['peak_rss_mib']:.0f}"]
            print("| " + " | ".join([*cells, result.get("index", "numpy"), str(recall)]) + " |")


if __name__ == "__main__":
    main()
