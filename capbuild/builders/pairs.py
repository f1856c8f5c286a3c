"""Any table of (image URL or path, caption): TSV, CSV, JSONL or parquet, one row per image.

A caption column may hold one caption or a list of them (a JSON/parquet list, or a list written as
text in a CSV cell: '["a", "b"]'). Columns other than the image, caption and id columns go to `meta`.
"""

from __future__ import annotations

import ast
import csv
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capbuild.builders.base import (
    IMAGE_DIRS_OPTION,
    Builder,
    SourceInfo,
    file_url,
    find_image,
    register,
    split_from_name,
)
from capbuild.builders.image_ref import ref_kind
from capbuild.builders.inputs import base_name, is_local, open_binary, open_text
from capbuild.builders.mime import undecodable_reason
from capbuild.errors import ConfigError, InputError
from capbuild.options import opt

FORMATS = ("tsv", "csv", "jsonl", "parquet")
SUFFIX_FORMATS = {".tsv": "tsv", ".txt": "tsv", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
                  ".parquet": "parquet"}  # fmt: skip
URL_SCHEMES = ("http://", "https://", "file://")
PARQUET_BATCH = 10_000

# Real caption cells can be long (WIT context, scraped alt text); the csv module's default cap is 128 KiB.
csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def table_format(url: str, forced: str | None = None) -> str:
    """The table format: `forced`, else the file extension (compression suffix ignored)."""
    if forced:
        if forced not in FORMATS:
            raise ConfigError(f"--format must be one of {', '.join(FORMATS)} (got {forced!r})")
        return forced
    name = base_name(url)
    suffix = name[name.rfind(".") :].lower() if "." in name else ""
    if suffix not in SUFFIX_FORMATS:
        raise ConfigError(f"cannot tell the format of {url} from its extension: pass --format ({', '.join(FORMATS)})")
    return SUFFIX_FORMATS[suffix]


@register
@dataclass
class PairsBuilder(Builder):
    """Rows from tables naming an image (`url_col`: http(s)/file URLs, or `path_col`: file paths,
    relative ones looked up in `image_dirs` then beside the table) and its caption(s) (`caption_col`).

    `columns` names the columns of a table without a header row (CSV/TSV). The source id is the
    `id_col` value, else FILE:ROW (0-based data row).
    """

    name = "pairs"
    summary = "Any table of image URLs or paths with captions (TSV, CSV, JSONL, parquet; a caption cell may be a list)."
    example = (
        "capbuild pairs captions.jsonl --path-col image_path --caption-col captions --images imgs/ "
        "--licence cc-by-4.0 --citation captions.bib --lang it --out it-pairs/"
    )
    licence = ""
    url_col: str | None = field(default=None, metadata=opt("Column of image URLs (http(s):// or file://)."))
    path_col: str | None = field(default=None, metadata=opt("Column of image file paths (relative: see --images)."))
    caption_col: str = field(default="caption", metadata=opt("Column of the caption, or of a list of captions."))
    id_col: str | None = field(default=None, metadata=opt("Column of a unique row id (default: FILE:ROW)."))
    image_ref_col: str | None = field(
        default=None,
        metadata=opt(
            "Column of each image's identity (coco:61844, flickr:1258913059, ...; used by --decontaminate); "
            "default: from the URL, or the SHA-1 of a local file."
        ),
    )
    image_dirs: list[Path] = field(default_factory=list, metadata=IMAGE_DIRS_OPTION)
    format: str | None = field(default=None, metadata=opt(f"{', '.join(FORMATS)} (default: from the extension)."))
    source: str = field(default="pairs", metadata=opt("Source name for the rows, the manifest and the card."))
    columns: list[str] | None = field(default=None, metadata=opt("Column names of a CSV/TSV without a header: a,b,c."))
    data_licence: str = field(
        default="", metadata=opt("Licence of the data (SPDX id or Hub licence, e.g. cc-by-4.0).", flag="--licence")
    )
    citation_file: Path | None = field(
        default=None, metadata=opt("BibTeX file with the data's citation, shown in the card.", flag="--citation")
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if (self.url_col is None) == (self.path_col is None):
            raise ConfigError("name the image column with exactly one of --url-col (URLs) or --path-col (file paths)")
        if "," in self.lang:
            raise ConfigError(f"a pairs table holds captions in one language; --lang {self.lang!r} names several")
        if self.format is not None:
            table_format("", self.format)
        if self.columns and len(self.columns) == 1 and "," in self.columns[0]:
            self.columns = [c.strip() for c in self.columns[0].split(",")]

    @property
    def source_name(self) -> str:
        return self.source

    @property
    def info(self) -> SourceInfo:
        citation = self.citation
        if self.citation_file is not None:
            path = Path(self.citation_file)
            if not path.is_file():
                raise InputError(f"--citation {str(path)!r} is not a file (give a BibTeX file)")
            citation = path.read_text(encoding="utf-8").strip()
        return SourceInfo(self.source_name, self.data_licence or self.licence, citation, self.homepage, self.name)

    def check(self, fetch_images: bool = True) -> None:
        super().check(fetch_images)
        self.info  # noqa: B018 (reads --citation: a missing file fails before the build starts)

    def rows(self) -> Iterator[dict[str, Any]]:
        for url in self.input_files():
            name = base_name(url)
            split = split_from_name(name)
            for number, record in enumerate(self.records(url)):
                row = self._row(record, url, name, split, number)
                if row is not None:
                    yield row

    def records(self, url: str) -> Iterator[dict[str, Any]]:
        """The file's rows as dicts; rows that cannot be parsed are counted and skipped."""
        kind = table_format(url, self.format)
        if kind == "parquet":
            yield from _parquet_records(url)
        elif kind == "jsonl":
            yield from self._jsonl_records(url)
        else:
            yield from self._delimited_records(url, "\t" if kind == "tsv" else ",")

    def _delimited_records(self, url: str, delimiter: str) -> Iterator[dict[str, Any]]:
        with open_text(url) as f:
            reader = csv.reader(f, delimiter=delimiter)
            header = self.columns_for(url) or next(reader, None)
            if header is None:
                return
            header = [h.lstrip("\ufeff").strip() for h in header]
            for fields in reader:
                if not fields:
                    continue
                if len(fields) != len(header):
                    self.skipped["malformed_row"] += 1
                    continue
                yield dict(zip(header, fields, strict=True))

    def columns_for(self, url: str) -> list[str] | None:
        """Column names of a headerless file (None: the file's first row is its header)."""
        return self.columns

    def declared_mime_type(self, record: dict[str, Any]) -> str | None:
        """The image type a row declares (None: judge by the URL's extension)."""
        return None

    def _jsonl_records(self, url: str) -> Iterator[dict[str, Any]]:
        with open_text(url) as f:
            first = f.read(1)
            while first.isspace():
                first = f.read(1)
            if first == "[":
                records = json.loads(first + f.read())
                yield from (r if isinstance(r, dict) else {} for r in records)
                return
            for number, line in enumerate(f):
                text = first + line if number == 0 else line
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError:
                    self.skipped["malformed_json_line"] += 1
                    continue
                if not isinstance(record, dict):
                    self.skipped["malformed_json_line"] += 1
                    continue
                yield record

    def _row(self, record: dict[str, Any], url: str, name: str, split: str, number: int) -> dict[str, Any] | None:
        image_col = self.url_col or self.path_col
        if image_col not in record or self.caption_col not in record:
            missing = [c for c in (image_col, self.caption_col) if c not in record]
            raise InputError(f"{url} has no column {missing[0]!r}; its columns are {sorted(record)}")
        image_url = self._image_url(record.get(image_col), url)
        if image_url is None:
            return None
        reason = undecodable_reason(self.declared_mime_type(record), image_url)
        if reason is not None:
            self.skipped[reason] += 1
            return None
        captions = self._captions(record.get(self.caption_col))
        if not captions:
            self.skipped["empty_caption"] += 1
            return None
        source_id = _text(record.get(self.id_col)) if self.id_col else f"{name}:{number}"
        if not source_id:
            self.skipped["empty_id"] += 1
            return None
        image_ref = None
        if self.image_ref_col:
            image_ref = _text(record.get(self.image_ref_col))
            try:
                ref_kind(image_ref)
            except ConfigError:
                self.skipped["invalid_image_ref"] += 1
                return None
        used = {image_col, self.caption_col, self.id_col, self.image_ref_col}
        meta = {k: v for k, v in record.items() if k not in used and _is_scalar(v) and v not in ("", None)}
        return self.make_row(
            source_id=source_id, split=split, image_url=image_url, image_ref=image_ref, captions=captions, meta=meta
        )

    def _image_url(self, value: Any, table_url: str) -> str | None:
        text = _text(value)
        if not text:
            self.skipped["empty_image"] += 1
            return None
        if self.url_col:
            if not text.startswith(URL_SCHEMES):
                self.skipped["not_a_url"] += 1
                return None
            return text
        path = Path(text)
        dirs = list(self.image_dirs)
        if is_local(table_url):
            dirs.append(Path(table_url.removeprefix("file://")).parent)
        if path.is_absolute():
            if path.is_file() or not dirs:
                return file_url(path)
            return file_url(find_image(dirs, path.name))
        return file_url(find_image(dirs, text, path.name))

    def _captions(self, value: Any) -> list[str]:
        if isinstance(value, str) and value.lstrip().startswith("["):
            value = _parse_list(value)
        items = value if isinstance(value, (list, tuple)) else [value]
        captions: list[str] = []
        for item in items:
            text = _text(item)
            if text:
                captions.append(text)
        return captions


def _parquet_records(url: str) -> Iterator[dict[str, Any]]:
    with open_binary(url) as f:
        import pyarrow.parquet as pq  # loaded when a parquet table is read, not when the CLI starts

        for batch in pq.ParquetFile(f).iter_batches(batch_size=PARQUET_BATCH):
            yield from batch.to_pylist()


def _parse_list(text: str) -> Any:
    """A list written in a text cell, as JSON or as Python's repr (pandas' to_csv of a list)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _text(value: Any) -> str:
    if value is None or isinstance(value, (list, dict)):
        return ""
    return str(value).strip()


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))
