"""A streaming reader of WIT's TSV files (wit_v1.*.tsv[.gz] and the Kaggle competition's layout).

WIT quotes a field that holds a tab, a quote or a newline, so one record may span several lines.
The reader splits the byte stream into records at lines that start a record (`LANG<TAB>http`: every
WIT row starts with its language and page URL), which keeps it in step after a truncated row or an
unclosed quote: such a record is counted as malformed and the next record is read as usual. Records
of other languages are skipped on their first bytes, before any decoding or field splitting, which
is what makes language selection fast; memory holds one record at a time.
"""

from __future__ import annotations

import csv
import itertools
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from capbuild.builders.inputs import open_binary
from capbuild.errors import InputError

WIT_COLUMNS = (
    "language", "page_url", "image_url", "page_title", "section_title", "hierarchical_section_title",
    "caption_reference_description", "caption_attribution_description", "caption_alt_text_description",
    "mime_type", "original_height", "original_width", "is_main_image", "attribution_passes_lang_id",
    "page_changed_recently", "context_page_description", "context_section_description",
)  # fmt: skip
# The Kaggle "Wikipedia - Image/Caption Matching" training files add one column at the end.
KAGGLE_COLUMNS = (*WIT_COLUMNS, "caption_title_and_reference_description")
RECORD_START = re.compile(rb"[A-Za-z][A-Za-z-]{1,15}\thttps?://")
READ_BUFFER = 1 << 20


@dataclass
class WitReader:
    """Yields the records of the given languages as {column: text} dicts, in file order.

    `counts` receives what was not yielded: `language_not_selected`, `malformed_row` (wrong number
    of fields: truncated, cut by a stray record start, or an unclosed quote), `not_utf8_replaced`.
    """

    languages: frozenset[str]
    counts: Counter[str] = field(default_factory=Counter)
    records: int = 0

    def read(self, url: str) -> Iterator[dict[str, str]]:
        with open_binary(url) as stream:
            lines = _lines(stream)
            columns, first = self._columns(url, lines)
            if first is not None:
                lines = itertools.chain([first], lines)
            yield from self._parse(self._scan(lines), columns)

    def _columns(self, url: str, lines: Iterator[bytes]) -> tuple[tuple[str, ...], bytes | None]:
        """The file's column names and, for a file without a header, its first line back."""
        first = next(lines, b"")
        if not first:
            return WIT_COLUMNS, None
        if RECORD_START.match(first):
            return (KAGGLE_COLUMNS if first.count(b"\t") >= len(WIT_COLUMNS) else WIT_COLUMNS), first
        columns = tuple(first.decode("utf-8", errors="replace").rstrip("\r\n").lstrip("\ufeff").split("\t"))
        if columns[:3] != WIT_COLUMNS[:3]:
            raise InputError(
                f"{url} is not a WIT TSV file: its header starts with {list(columns[:3])}, expected "
                f"{list(WIT_COLUMNS[:3])}"
            )
        return columns, None

    def _scan(self, lines: Iterable[bytes]) -> Iterator[bytes]:
        """The records of the wanted languages, continuation lines (inside quoted fields) joined.

        Lines before the first record start belong to no record: they count as one malformed row.
        """
        wanted = {lang.encode() for lang in self.languages}
        match = RECORD_START.match
        parts: list[bytes] | None = None
        records = skipped = 0
        orphan = False
        for line in lines:
            tab = line.find(b"\t", 0, 18)
            if tab > 1 and line.startswith(b"http", tab + 1) and match(line):
                records += 1
                if parts is not None:
                    yield b"\n".join(parts)
                if line[:tab] in wanted:
                    parts = [line]
                else:
                    parts = None
                    skipped += 1
            elif parts is not None:
                parts.append(line)
            elif records == 0 and line.strip() and not orphan:
                orphan = True
                self.counts["malformed_row"] += 1
        if parts is not None:
            yield b"\n".join(parts)
        self.records += records
        if skipped:
            self.counts["language_not_selected"] += skipped

    def _parse(self, records: Iterable[bytes], columns: tuple[str, ...]) -> Iterator[dict[str, str]]:
        width = len(columns)
        for record in records:
            try:
                text = record.decode("utf-8")
            except UnicodeDecodeError:
                text = record.decode("utf-8", errors="replace")
                self.counts["not_utf8_replaced"] += 1
            fields = next(csv.reader([text.rstrip("\r\n")], delimiter="\t", strict=False), [])
            if len(fields) != width:
                self.counts["malformed_row"] += 1
                continue
            yield dict(zip(columns, fields, strict=True))


def _lines(stream: Any) -> Iterator[bytes]:
    """Lines of a binary stream, without their newline (pyarrow streams have no line iterator)."""
    pending = b""
    while chunk := stream.read(READ_BUFFER):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        yield from lines
    if pending:
        yield pending
