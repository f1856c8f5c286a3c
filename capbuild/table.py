"""The caption table: the one Arrow schema every stage reads and writes, and its parquet parts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

BASE_FIELDS: list[pa.Field] = [
    pa.field("key", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("source_id", pa.string(), nullable=False),
    pa.field("split", pa.string()),
    pa.field("image_url", pa.string()),
    pa.field("caption", pa.string()),
    pa.field("captions", pa.list_(pa.string())),
    pa.field("lang", pa.string()),
    pa.field("caption_orig", pa.string()),
    pa.field("lang_orig", pa.string()),
    pa.field("meta", pa.string()),
]

# Scores that filters compute and keep in the table (and in every shard's KEY.json).
# A filter names its column here so that the schema stays defined in this one module.
SCORE_FIELDS: dict[str, pa.DataType] = {
    "word_count": pa.int32(),
    "propn_ratio": pa.float32(),
    "lang_detected": pa.string(),
    "lang_score": pa.float32(),
    # The source-language `captions` of a translated row (capbuild.translate).
    "captions_orig": pa.list_(pa.string()),
    # The image filters (capbuild.imagefilters): the image's 64-bit pHash (16 hex digits) and the
    # image-text cosine under the score model.
    "phash": pa.string(),
    "clip_score": pa.float32(),
}

# Columns that only rejected rows carry: which filter dropped the row, and the value that failed.
REJECT_FIELDS: list[pa.Field] = [pa.field("filter", pa.string()), pa.field("filter_value", pa.string())]

PART_PATTERN = "part-*.parquet"


def make_key(source: str, source_id: str) -> str:
    """A stable, unique sample key derived from (source, source id): 16 hex digits, no dot."""
    digest = hashlib.blake2b(f"{source}\x1f{source_id}".encode(), digest_size=8)
    return digest.hexdigest()


def caption_schema(score_columns: Iterable[str] = ()) -> pa.Schema:
    """The caption-table schema with the given score columns appended (in SCORE_FIELDS order)."""
    wanted = set(score_columns)
    unknown = wanted - SCORE_FIELDS.keys()
    if unknown:
        raise ValueError(f"unknown score columns {sorted(unknown)}; declare them in capbuild.table.SCORE_FIELDS")
    scores = [pa.field(name, dtype) for name, dtype in SCORE_FIELDS.items() if name in wanted]
    return pa.schema(BASE_FIELDS + scores)


def rejected_schema(score_columns: Iterable[str] = ()) -> pa.Schema:
    """The schema of rejected/ parts: the caption table plus filter name and failing value."""
    return pa.schema(list(caption_schema(score_columns)) + REJECT_FIELDS)


def make_row(
    *,
    source: str,
    source_id: str,
    captions: list[str],
    lang: str,
    image_url: str | None,
    split: str | None = None,
    caption_orig: str | None = None,
    lang_orig: str | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One caption-table row. `caption` is the first of `captions`; originals default to it."""
    caption = captions[0] if captions else ""
    return {
        "key": make_key(source, source_id),
        "source": source,
        "source_id": source_id,
        "split": split,
        "image_url": image_url,
        "caption": caption,
        "captions": list(captions),
        "lang": lang,
        "caption_orig": caption if caption_orig is None else caption_orig,
        "lang_orig": lang if lang_orig is None else lang_orig,
        "meta": json.dumps(meta or {}, ensure_ascii=False, sort_keys=True),
    }


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema | None = None) -> pa.Table:
    """Rows (dicts) to a table of the caption schema; missing score columns become nulls."""
    schema = schema or caption_schema()
    return pa.Table.from_pylist(rows, schema=schema)


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select and order `table`'s columns as `schema`, adding null columns it lacks."""
    columns = []
    for field in schema:
        if field.name in table.column_names:
            columns.append(table[field.name].cast(field.type))
        else:
            columns.append(pa.nulls(len(table), field.type))
    return pa.Table.from_arrays(columns, schema=schema)


def part_path(folder: Path, index: int) -> Path:
    return folder / f"part-{index:05d}.parquet"


def write_part(table: pa.Table, folder: Path, index: int) -> Path:
    """Write one parquet part atomically (temporary file, then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = part_path(folder, index)
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path


def part_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(PART_PATTERN))


def read_parts(folder: Path) -> pa.Table:
    """Read every part of a folder as one table (an empty caption table if there are none)."""
    files = part_files(folder)
    if not files:
        return caption_schema().empty_table()
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="default")


def iter_batches(table: pa.Table, size: int) -> Iterator[pa.Table]:
    """Consecutive slices of at most `size` rows."""
    for start in range(0, len(table), size):
        yield table.slice(start, size)


def with_captions(table: pa.Table, captions: list[str], caption_lists: list[list[str]]) -> pa.Table:
    """`table` with its `caption` and `captions` columns replaced (for filters that rewrite text)."""
    index = table.schema.get_field_index
    table = table.set_column(index("caption"), "caption", pa.array(captions, pa.string()))
    return table.set_column(index("captions"), "captions", pa.array(caption_lists, pa.list_(pa.string())))
