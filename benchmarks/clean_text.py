"""Rows per second of the `clean` step now against the step before its fast paths.

Draws N caption-table rows with the caption generator of benchmarks/scale_text_executors.py (one
caption per row, also its `captions` list): "coco-like" rows as it draws them without damage, and
its "mojibake mix" (a quarter of the captions with mojibake and an HTML entity). Each set runs in
batches of 10,000 rows through `CleanFilter().apply` (now: whole columns, the ASCII fast path in
Arrow kernels, the rest through ftfy with a prebuilt configuration) and through the generic
row-by-row rewriter with `previous_clean` (before: every caption through ftfy, NFC and a whitespace
regex), rounds interleaved; the outputs are checked identical. Rates are rows per CPU second of this
process (median of the rounds), so that other jobs on a shared machine do not count.

    .venv/bin/python benchmarks/clean_text.py --rows 200000 --rounds 3
"""

from __future__ import annotations

import argparse
import re
import statistics
import time
import unicodedata

import ftfy
import pyarrow as pa

from capbuild.filters.base import CaptionRewriter
from capbuild.filters.text import CleanFilter
from capbuild.table import make_row, rows_to_table

WORDS = ["dog", "cat", "man", "woman", "child", "bus", "train", "plate", "pizza", "street", "field", "beach", "table",
         "sky", "tree", "horse", "ball"]  # fmt: skip
BATCH = 10_000
WHITESPACE = re.compile(r"\s+")


def previous_clean(text: str) -> str:
    """The clean step's text function before the fast path."""
    return WHITESPACE.sub(" ", unicodedata.normalize("NFC", ftfy.fix_text(text))).strip()


def caption(i: int, mojibake: bool) -> str:
    """scale_text_executors.write_captions' caption i."""
    words = [WORDS[(i * k + k) % len(WORDS)] for k in range(1, 4 + i % 9)]
    text = "a " + " ".join(words) + f" number {i % 5000}"
    if mojibake and i % 4 == 0:
        text = text.replace("a ", "caf\u00c3\u00a9 &amp; ", 1)
    return text


def batches(rows: int, mojibake: bool) -> list[pa.Table]:
    made = [
        make_row(source="coco", source_id=str(i), captions=[caption(i, mojibake)], lang="en", image_url=None)
        for i in range(rows)
    ]
    return [rows_to_table(made[start : start + BATCH]) for start in range(0, rows, BATCH)]


class PreviousClean(CaptionRewriter):
    """The clean step before: the generic rewriter, each caption through previous_clean."""

    name = "clean"

    def rewrite(self, text: str) -> str:
        return previous_clean(text)


def run(tables: list[pa.Table], step: CaptionRewriter) -> tuple[float, list[pa.Table]]:
    """CPU seconds of the step over the tables, and its output."""
    started = time.process_time()
    results = [step.apply(table).table for table in tables]
    return time.process_time() - started, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("| captions | rows | before (rows/CPU s) | now (rows/CPU s) | speed-up | same output |")
    print("|---|---|---|---|---|---|")
    for label, mojibake in (("coco-like", False), ("mojibake mix", True)):
        tables = batches(args.rows, mojibake)
        seconds: dict[str, list[float]] = {"full": [], "fast": []}
        outputs = {}
        for round_index in range(args.rounds):
            order = [("full", PreviousClean()), ("fast", CleanFilter())]
            for name, step in order if round_index % 2 == 0 else order[::-1]:
                elapsed, outputs[name] = run(tables, step)
                seconds[name].append(elapsed)
        same = all(a.equals(b) for a, b in zip(outputs["full"], outputs["fast"], strict=True))
        full, fast = (args.rows / statistics.median(seconds[n]) for n in ("full", "fast"))
        print(
            f"| {label} | {args.rows:,} | {full:,.0f} | {fast:,.0f} | {fast / full:.1f}x | {'yes' if same else 'NO'} |"
        )


if __name__ == "__main__":
    main()
