"""`clean`'s text function: the ASCII fast path gives what the full path (ftfy, NFC, whitespace) gives."""

from __future__ import annotations

import gzip
import json
import random
import string
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from capbuild.filters.base import CaptionRewriter
from capbuild.filters.clean_text import clean_caption, clean_caption_full
from capbuild.filters.text import CleanFilter
from capbuild.table import make_row, rows_to_table

# Mojibake, HTML, control and width cases ftfy repairs, and the mix of benchmarks/scale_text_executors.py.
FIXTURES = [
    "caf\u00c3\u00a9 & a dog number 12",
    "caf\u00c3\u00a9 &amp; dog cat number 7",
    "fish &amp; chips &lt;b&gt;",
    "<b>bold</b> &",
    "&#233;t&eacute;",
    "\x1b[31mred\x1b[0m car",
    "tab\tseparated\r\nlines",
    "a\x00b\x0bc\x7fd",
    "the \u201cquoted\u201d word",
    "\ufb01sh \uff21\uff22",
    "cafe\u0301 cr\u00e8me",
    "l\u00e2\u20ac\u2122amour",
    "\u00c3\u00a0 la carte",
    "  leading and trailing  ",
    "double  spaces   inside",
    "",
    " ",
    "\u00a0non-breaking\u00a0space",
    "\u0627\u0644\u0642\u0637 \u0639\u0644\u0649 \u0627\u0644\u0637\u0627\u0648\u0644\u0629",
    "zero\u200bwidth inside",
]
INVISIBLE_ONLY = ["\u200b", "\ufeff", "\u2060", "\u00ad", "\u200b \ufeff\u2060\u00ad", " \u200b\n"]


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _realdata_texts(root: Path) -> list[str]:
    """Every caption-like string of the real sample files: JSON strings, lines and tab-separated fields."""
    texts: list[str] = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix not in {".txt", ".tsv", ".json", ".jsonl", ".gz", ".csv"}:
            continue
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text = raw.decode("utf-8", errors="replace")
        if path.suffix == ".json":
            texts.extend(_strings(json.loads(text)))
            continue
        for line in text.splitlines():
            if path.suffix == ".jsonl" and line.strip():
                texts.extend(_strings(json.loads(line)))
            else:
                texts.append(line)
                texts.extend(line.split("\t"))
    return texts


def test_fast_path_matches_full_path_on_every_realdata_caption(realdata):
    texts = _realdata_texts(realdata)
    assert len(texts) > 1000
    fast = [t for t in texts if t.isascii() and t.isprintable() and "&" not in t and "<" not in t]
    assert fast and len(fast) < len(texts), "both paths must be exercised"
    assert [clean_caption(t) for t in texts] == [clean_caption_full(t) for t in texts]


@pytest.mark.parametrize("text", FIXTURES)
def test_fast_path_matches_full_path_on_fixtures(text):
    assert clean_caption(text) == clean_caption_full(text)


def test_fast_path_matches_full_path_on_drawn_ascii():
    rng = random.Random(16)
    alphabet = string.printable + "&<" * 3  # printable ASCII, tab, newlines and the two characters ftfy acts on
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(5000)]
    assert [clean_caption(t) for t in texts] == [clean_caption_full(t) for t in texts]


@pytest.mark.parametrize("text", INVISIBLE_ONLY)
def test_a_caption_of_invisible_characters_is_empty(text):
    assert clean_caption(text) == ""


def test_clean_rejects_rows_of_invisible_characters_and_keeps_visible_ones():
    captions = ["\u200b\u2060", "a\u200bdog", "\u00ad"]
    rows = [
        make_row(source="t", source_id=str(i), captions=[c], lang="en", image_url=None) for i, c in enumerate(captions)
    ]
    result = CleanFilter().apply(rows_to_table(rows))
    assert result.keep == [False, True, False]
    assert result.values == ["empty", "", "empty"]
    assert result.table["caption"].to_pylist()[1] == "a\u200bdog"


class RowByRowClean(CaptionRewriter):
    """The clean step as the generic rewriter runs it, one caption at a time."""

    name = "clean-row-by-row"

    def rewrite(self, text: str) -> str:
        return clean_caption_full(text)


def test_clean_on_whole_columns_gives_the_row_by_row_result(realdata):
    rng = random.Random(7)
    texts = [*_realdata_texts(realdata), *FIXTURES, *INVISIBLE_ONLY]
    lists = [rng.sample(texts, rng.randint(0, 3)) + rng.choice([[], [""], ["  "]]) for _ in texts]
    table = pa.table(
        {
            "lang": ["en"] * len(texts),
            "caption": [None if i % 97 == 0 else t for i, t in enumerate(texts)],
            "captions": [None if i % 89 == 0 else lst for i, lst in enumerate(lists)],
        }
    )
    for batch in (table, table.slice(13, 500), pa.concat_tables([table.slice(0, 40), table.slice(40, 40)])):
        fast, reference = CleanFilter().apply(batch), RowByRowClean().apply(batch)
        assert fast.table.equals(reference.table)
        assert fast.keep == reference.keep and fast.values == reference.values
    assert not all(CleanFilter().apply(table).keep), "rows left empty must be exercised"
