"""Text-stage throughput on the local executor against Ray with 1 and 2 workers, same input, one run.

Draws N COCO-layout captions (some with mojibake and HTML entities, so that `clean` has work), then
runs the text stage (`clean`, `unique_key`, `len=3..`, `dedup`) three times, timing the builder's
raw partitions and every filter segment, and checks that the three tables are identical.

    .venv/bin/python benchmarks/scale_text_executors.py --captions 200000 --partition-rows 10000
    .venv/bin/python benchmarks/scale_text_executors.py --captions 50000 --executors local   # no Ray
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
import ray

import capbuild.stages.text.stage as text_stage
from capbuild.builders.coco import CocoBuilder
from capbuild.stages.text.executors import ExecutorOptions
from capbuild.stages.text.plan import make_plan

WORDS = [
    "dog",
    "cat",
    "man",
    "woman",
    "child",
    "bus",
    "train",
    "plate",
    "pizza",
    "street",
    "field",
    "beach",
    "table",
    "sky",
    "tree",
    "horse",
    "ball",
]
FILTERS = ["len=3..", "dedup"]


def write_captions(path: Path, count: int) -> None:
    images, annotations = [], []
    for i in range(count):
        words = [WORDS[(i * k + k) % len(WORDS)] for k in range(1, 4 + i % 9)]
        caption = "a " + " ".join(words) + f" number {i % 5000}"
        if i % 4 == 0:
            caption = caption.replace("a ", "caf\u00c3\u00a9 &amp; ", 1)  # mojibake + entity for ftfy
        images.append({"id": i, "file_name": f"{i}.jpg", "coco_url": f"http://example.org/{i}.jpg"})
        annotations.append({"id": i, "image_id": i, "caption": caption})
    path.write_text(json.dumps({"images": images, "annotations": annotations}))


def run(captions: Path, out: Path, executor: ExecutorOptions) -> dict[str, tuple[float, float]]:
    """One text stage; (wall seconds, this process's CPU seconds) for the raw partitions and for
    each segment. On the local executor the CPU seconds are all the work, whatever else the machine
    runs; on Ray they are the driver's share only."""
    timings: dict[str, tuple[float, float]] = {}
    originals = {name: getattr(text_stage, name) for name in ("_write_raw_partitions", "_run_segment")}

    def timed(name):
        def wrapper(*args, **kwargs):
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return originals[name](*args, **kwargs)
            finally:
                label = "builder -> raw partitions" if name == "_write_raw_partitions" else args[0].label
                timings[label] = (time.perf_counter() - started, time.process_time() - cpu)

        return wrapper

    for name in originals:
        setattr(text_stage, name, timed(name))
    try:
        started, cpu = time.perf_counter(), time.process_time()
        text_stage.run_text_stage(
            CocoBuilder(inputs=[captions]), make_plan("en", FILTERS), out, out / ".work", executor
        )
        timings["text stage (total)"] = (time.perf_counter() - started, time.process_time() - cpu)
    finally:
        for name, original in originals.items():
            setattr(text_stage, name, original)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captions", type=int, default=200_000)
    parser.add_argument("--partition-rows", type=int, default=10_000)
    parser.add_argument("--executors", choices=["all", "local"], default="all", help="local: no Ray runs")
    args = parser.parse_args()
    text_stage.TEXT_BATCH_ROWS = args.partition_rows
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_captions(root / "captions.json", args.captions)
        runs = {"local": ExecutorOptions("local")}
        ray_start = 0.0
        if args.executors == "all":
            started = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            ray_start = time.perf_counter() - started
            runs["ray, 1 worker"] = ExecutorOptions("ray", workers=1)
            runs["ray, 2 workers"] = ExecutorOptions("ray", workers=2)
        results = {name: run(root / "captions.json", root / name.replace(" ", "_"), ex) for name, ex in runs.items()}
        tables = [pq.read_table(root / name.replace(" ", "_") / "captions") for name in runs]
        assert all(t.equals(tables[0]) for t in tables), "executors disagree"
        if ray.is_initialized():
            ray.shutdown()
    print(f"captions: {args.captions:,}, partitions of {args.partition_rows:,} rows, kept: {len(tables[0]):,}")
    print(f"ray.init (2 CPUs, once): {ray_start:.1f} s")
    print("| step | local, CPU time | " + " | ".join(f"{name}, wall" for name in results) + " |")
    print("|---|---|" + "---|" * len(results))
    for step, (_, cpu) in results["local"].items():
        cells = [_rate(cpu, args.captions)] + [_rate(r[step][0], args.captions) for r in results.values()]
        print(f"| {step} | " + " | ".join(cells) + " |")


def _rate(seconds: float, rows: int) -> str:
    return f"{seconds:.2f} s ({rows / seconds:,.0f} rows/s)"


if __name__ == "__main__":
    main()
