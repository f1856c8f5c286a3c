"""Evaluation across languages and decontamination at scale (BENCHMARKS.md, "Evaluation sets").

1. `capbuild eval` on one set of IMAGES images in LANGS languages (a row per image and language, as an
   XM3600 build holds), images embedded once, against the per-language loop: LANGS one-language sets,
   each embedding the same images again. Same tiny random capbuild run, same shards, same process;
   the per-language metrics of both must agree.
2. `capbuild decontaminate` of a ROWS-row caption table (no shards) against 5 evaluation sets of
   image_ref files, against the obvious pandas version (whole table in memory, `isin`, write back);
   each in its own process, so that peak memory (ru_maxrss) is its own.

    python benchmarks/eval_sets.py [--images 3600] [--langs 36] [--rows 1000000] [--skip-eval|--skip-decon]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

LANGS = [
    "ar", "bn", "cs", "da", "de", "el", "en", "es", "fa", "fi", "fil", "fr", "he", "hi", "hr", "hu", "id", "it",
    "ja", "ko", "mi", "nl", "no", "pl", "pt", "quz", "ro", "ru", "sv", "sw", "te", "th", "tr", "uk", "vi", "zh",
]  # fmt: skip
SET_SIZES = {"xtd10": 1000, "multi30k": 1000, "xm3600": 3600, "coco-karpathy-test": 5000, "flickr30k-test": 1000}


def image_phase(run: Path, one: Path, per_lang: list[Path]) -> None:
    """The image pass alone (scan, decode, embed): the one set's against every per-language set's."""
    from rich.progress import Progress

    from capbuild.models.dual_encoder import load_dual_encoder
    from capbuild.train.evaluate import embed_set
    from capbuild.train.sources import eval_data

    encoder = load_dual_encoder(str(run), "cpu")
    with Progress(disable=True) as progress:
        started = time.perf_counter()
        together = embed_set(encoder, eval_data(str(one)), 256, 1, progress)
        one_pass = time.perf_counter() - started
        started = time.perf_counter()
        embedded = sum(len(embed_set(encoder, eval_data(str(b)), 256, 1, progress).images) for b in per_lang)
        looped = time.perf_counter() - started
    images = len(together.images)
    print(f"\nimage pass only (scan KEY.json, decode, embed): {len(together.rows)} samples, {images} distinct images")
    print("| run | image embeddings | seconds | images/s | vs loop |")
    print("|---|---:|---:|---:|---:|")
    print(f"| per-language loop ({len(per_lang)} sets) | {embedded} | {looped:.1f} | {images / looped:,.1f} | 1.0x |")
    print(
        f"| capbuild eval, one set | {images} | {one_pass:.1f} | {images / one_pass:,.1f} | {looped / one_pass:.1f}x |"
    )


def eval_benchmark(images: int, langs: list[str], root: Path, end_to_end: bool = True) -> None:
    import torch
    from dual_encoders import save_tiny_run
    from eval_builds import row, write_build

    from capbuild.train.evaluate import EvalRequest, evaluate

    torch.set_num_threads(1)
    run = save_tiny_run(root / "run")
    keys = [f"{i:016x}" for i in range(images)]

    def rows(lang: str) -> list[dict]:
        return [
            row("xm3600", f"{lang}/{k}", f"openimages:{k}", [f"{lang} picture {i}"], lang, "test")
            for i, k in enumerate(keys)
        ]

    started = time.perf_counter()
    one = write_build(root / "all", "xm3600", [r for lang in langs for r in rows(lang)], shard_size=5000)
    per_lang = [write_build(root / lang, "xm3600", rows(lang), shard_size=5000) for lang in langs]
    print(f"shards written in {time.perf_counter() - started:.1f} s")

    image_phase(run, one, per_lang)
    if not end_to_end:
        return
    started = time.perf_counter()
    together = evaluate(EvalRequest(model=run, data=[str(one)], workers=1, batch_size=256))
    one_pass = time.perf_counter() - started
    started = time.perf_counter()
    loop = {}
    for lang, build in zip(langs, per_lang, strict=True):
        loop[lang] = evaluate(EvalRequest(model=run, data=[str(build)], workers=1, batch_size=256))
    looped = time.perf_counter() - started
    same = all(together["retrieval"]["xm3600"][lang] == loop[lang]["retrieval"]["xm3600"][lang] for lang in langs)
    captions = images * len(langs)
    print(f"\n{images} images x {len(langs)} languages = {captions} captions; same metrics per language: {same}")
    print("images/s: the set's images evaluated (in every language) per second; captions/s: captions ranked per second")
    print("| run | image embeddings | seconds | images/s | captions/s | vs loop |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| per-language loop ({len(langs)} sets) | {captions} | {looped:.1f} | {images / looped:,.1f} "
          f"| {captions / looped:,.0f} | 1.0x |")  # fmt: skip
    print(f"| capbuild eval, one set | {images} | {one_pass:.1f} | {images / one_pass:,.1f} "
          f"| {captions / one_pass:,.0f} | {looped / one_pass:.1f}x |")  # fmt: skip


def write_table(folder: Path, rows: int, sets: dict[str, list[str]], part_rows: int = 20_000) -> int:
    """A caption table of `rows` rows; one row in 100 shows an image of one of the sets."""
    contaminated = [ref for refs in sets.values() for ref in refs]
    folder.mkdir(parents=True)
    shared = 0
    for part, start in enumerate(range(0, rows, part_rows)):
        n = min(part_rows, rows - start)
        refs = []
        for i in range(start, start + n):
            if i % 100 == 0:
                refs.append(contaminated[(i // 100) % len(contaminated)])
                shared += 1
            else:
                refs.append(f"url:https://example.org/images/{i}.jpg")
        table = pa.table(
            {
                "key": [f"{i:016x}" for i in range(start, start + n)],
                "source": ["wit"] * n,
                "source_id": [str(i) for i in range(start, start + n)],
                "split": ["train"] * n,
                "image_url": [f"https://example.org/images/{i}.jpg" for i in range(start, start + n)],
                "image_ref": refs,
                "caption": [f"una didascalia di prova numero {i}" for i in range(start, start + n)],
                "captions": [[f"una didascalia di prova numero {i}"] for i in range(start, start + n)],
                "lang": ["it"] * n,
                "caption_orig": [f"una didascalia di prova numero {i}" for i in range(start, start + n)],
                "lang_orig": ["it"] * n,
                "meta": ["{}"] * n,
            }
        )
        pq.write_table(table, folder / f"part-{part:05d}.parquet")
    return shared


def _capbuild_decontaminate(out: str, ref_files: list[str], result: multiprocessing.Queue) -> None:
    from capbuild.decontaminate import decontaminate_build

    started = time.perf_counter()
    records = decontaminate_build(Path(out), ref_files, show_progress=False)
    result.put((time.perf_counter() - started, sum(r["rows"] for r in records), _peak_mib()))


def _pandas_decontaminate(out: str, ref_files: list[str], result: multiprocessing.Queue) -> None:
    import pandas as pd

    started = time.perf_counter()
    refs: set[str] = set()
    for path in ref_files:
        refs.update(Path(path).read_text().split())
    frame = pd.read_parquet(Path(out) / "captions")
    mask = frame["image_ref"].isin(refs)
    frame[~mask].to_parquet(Path(out) / "kept.parquet")
    frame[mask].to_parquet(Path(out) / "dropped.parquet")
    result.put((time.perf_counter() - started, int(mask.sum()), _peak_mib()))


def _peak_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_process(target, *args) -> tuple[float, int, float]:
    context = multiprocessing.get_context("spawn")  # a fresh process: its peak memory is its own
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(f"{target.__name__} failed (exit {process.exitcode}); see its traceback above")
    return queue.get()


def _pandas_baseline(result: multiprocessing.Queue) -> None:
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    result.put((0.0, 0, _peak_mib()))


def _capbuild_baseline(result: multiprocessing.Queue) -> None:
    import capbuild.cards.card
    import capbuild.decontaminate  # noqa: F401

    result.put((0.0, 0, _peak_mib()))


def decontamination_benchmark(rows: int, root: Path) -> None:
    sets = {
        name: [f"coco:{index * 1_000_000 + i}" for i in range(size)]
        for index, (name, size) in enumerate(SET_SIZES.items())
    }
    ref_files = []
    for name, refs in sets.items():
        path = root / f"{name}.txt"
        path.write_text("\n".join(refs) + "\n")
        ref_files.append(str(path))
    runs = {}
    baselines = {}
    approaches = (
        ("pandas (whole table, isin)", _pandas_decontaminate, _pandas_baseline),
        ("capbuild decontaminate (incl. manifest and card)", _capbuild_decontaminate, _capbuild_baseline),
    )
    for label, target, baseline in approaches:
        baselines[label] = _in_process(baseline)[2]
        out = root / label.split()[0]
        shared = write_table(out / "captions", rows, sets)
        (out / "rejected").mkdir()
        wit = {
            "name": "wit",
            "license": "cc-by-sa-3.0",
            "citation": "",
            "homepage": "https://github.com/google-research-datasets/wit",
        }
        manifest = {"config": {"source": "wit", "filters": []}, "sources": {"wit": wit},
                    "stages": {"text": {"done": True}, "images": {"done": False}}, "counts": {"text": {}}}  # fmt: skip
        (out / "manifest.json").write_text(json.dumps(manifest))
        runs[label] = _in_process(target, str(out), ref_files)
        assert runs[label][1] == shared, (label, runs[label][1], shared)
    print(f"\n{rows:,} rows against {len(sets)} sets ({sum(SET_SIZES.values()):,} image_refs); {shared:,} rows dropped")
    print("memory: peak RSS of the run's process, and above the same process with its imports done (webdataset")
    print("brings torch into capbuild's)")
    print("| run | seconds | rows/s | peak RSS (MiB) | above imports (MiB) |")
    print("|---|---:|---:|---:|---:|")
    for label, (seconds, _, peak) in runs.items():
        print(f"| {label} | {seconds:.1f} | {rows / seconds:,.0f} | {peak:.0f} | {peak - baselines[label]:.0f} |")


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=3600)
    parser.add_argument("--langs", type=int, default=36)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--skip-decon", action="store_true")
    parser.add_argument("--image-pass-only", action="store_true", help="eval: time the image pass, not end to end")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="capbuild-eval-bench-"))
    try:
        if not args.skip_eval:
            eval_benchmark(args.images, LANGS[: args.langs], root / "eval", end_to_end=not args.image_pass_only)
        if not args.skip_decon:
            (root / "decon").mkdir()
            decontamination_benchmark(args.rows, root / "decon")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
