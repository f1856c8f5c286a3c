"""PROPN and translation throughput on the local executor against Ray with 1 and 2 workers, same input, one run.

Two text stages, each run three times (local, Ray with 1 worker, Ray with 2 workers) on the same captions:

  propn        `--filter propn=0.8` with spaCy fr_core_news_sm on generated French captions
               (the mix of benchmarks/propn_filter.py)
  translation  `--translate` en -> it with a random-weight MarianMT converted to CTranslate2 int8
               (d_model 256, 3+3 layers, 4 heads, FFN 1024, 8k vocabulary), a fresh cache per run

Each figure is the wall time of the whole build's text stage (builder, filters, output), so on Ray
it includes the actors' start-up and model loading. Prints rows/s, the ratio against local, and the
share of output rows (kept and rejected: key and caption) that match the local tables (identical, or
the share; int8 CPU decoding may depend on how captions are batched). The random model's outputs are
mostly rejected by `mt_degenerate`, so the translations are compared in OUT/rejected too. Run:

    .venv/bin/python benchmarks/scale_pos_translate.py --pos-captions 6000 --mt-captions 1500 --partition-rows 500
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import ray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from propn_filter import french_captions  # noqa: E402

import capbuild.stages.text.stage as text_stage  # noqa: E402
from capbuild.build import BuildRequest, run_build  # noqa: E402
from capbuild.builders.coco import CocoBuilder  # noqa: E402
from capbuild.stages.text.executors import ExecutorOptions  # noqa: E402
from capbuild.stages.text.options import TextOptions  # noqa: E402
from capbuild.stages.text.plan import make_plan  # noqa: E402
from tests.translate_models import build_marian, fixture_captions  # noqa: E402

TARGET = "it"  # the language translated into
EXECUTORS = {
    "local": ExecutorOptions("local"),
    "ray, 1 worker": ExecutorOptions("ray", workers=1),
    "ray, 2 workers": ExecutorOptions("ray", workers=2),
}


def write_coco(path: Path, captions: list[str]) -> Path:
    images = [{"id": i, "file_name": f"{i}.jpg", "coco_url": f"http://x.org/{i}.jpg"} for i in range(len(captions))]
    annotations = [{"id": i, "image_id": i, "caption": c} for i, c in enumerate(captions)]
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def build(root: Path, name: str, captions: Path, lang: str, filters: list[str], options: dict) -> tuple[float, Path]:
    out = root / name.replace(" ", "_").replace(",", "")
    text = options(out) if callable(options) else options
    request = BuildRequest(
        builder=CocoBuilder(lang=lang, inputs=[captions]),
        out=out,
        plan=make_plan(TARGET if text.translate else lang, filters, [], text),
        images=None,
        executor=EXECUTORS[name],
    )
    started = time.perf_counter()
    run_build(request)
    return time.perf_counter() - started, out


def matching_share(table, reference) -> float:
    """Share of the reference's rows found with the same key and caption in `table`."""
    got = dict(zip(table["key"].to_pylist(), table["caption"].to_pylist(), strict=True))
    want = zip(reference["key"].to_pylist(), reference["caption"].to_pylist(), strict=True)
    return sum(got.get(key) == caption for key, caption in want) / max(1, len(reference))


def measure(root: Path, label: str, captions: list[str], lang: str, filters: list[str], options) -> list[str]:
    source = write_coco(root / f"{label}.json", captions)
    rows = []
    results = {}
    for name in EXECUTORS:
        seconds, out = build(root / label, name, source, lang, filters, options)
        tables = [pq.read_table(out / part) for part in ("captions", "rejected") if (out / part).exists()]
        results[name] = (seconds, len(tables[0]), pa.concat_tables([t.select(["key", "caption"]) for t in tables]))
    local_seconds, _, local_table = results["local"]
    for name, (seconds, kept, table) in results.items():
        identical = table.equals(local_table)
        share = 1.0 if identical else matching_share(table, local_table)
        rows.append(
            f"| {label} | {name} | {len(captions):,} | {kept:,} | {seconds:.1f} s | "
            f"{len(captions) / seconds:,.0f} | {local_seconds / seconds:.2f}x | "
            f"{'identical' if identical else f'{share:.1%} of rows match'} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pos-captions", type=int, default=6000)
    parser.add_argument("--mt-captions", type=int, default=1500)
    parser.add_argument("--partition-rows", type=int, default=500)
    parser.add_argument("--skip", choices=["propn", "translation"], action="append", default=[])
    args = parser.parse_args()
    text_stage.TEXT_BATCH_ROWS = args.partition_rows

    from capbuild.translate.convert import convert_model

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - started
        if "propn" not in args.skip:
            captions = french_captions(args.pos_captions)
            rows += measure(root, "propn=0.8", captions, "fr", ["propn=0.8"], TextOptions())
        if "translation" not in args.skip:
            model = root / "marian-ct2"
            marian = build_marian(root / "marian-hf", d_model=256, layers=3, vocab_size=8000, ffn=1024)
            convert_model(str(marian), model)
            captions = list(dict.fromkeys(fixture_captions(args.mt_captions * 2, seed=1)))[: args.mt_captions]

            def options(out: Path) -> TextOptions:
                # a fresh cache per run, so that no run reads another's translations
                return TextOptions(translate=True, mt_model=str(model),
                                   mt_cache=str(out.parent / f"{out.name}-mt-cache"), mt_progress=False)  # fmt: skip

            rows += measure(root, "translate en->it", captions, "en", [], options)
        ray.shutdown()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}")
    print(f"partitions of {args.partition_rows:,} rows; ray.init (2 CPUs, once, not counted): {ray_start:.1f} s")
    print("| stage | executor | captions | kept | wall | rows/s | vs local | table vs local |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
