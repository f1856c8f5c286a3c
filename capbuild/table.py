"""The caption table: the one Arrow schema every stage reads and writes, and its parquet parts."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from capbuild.atomic import atomic_path

BASE_FIELDS: list[pa.Field] = [
    pa.field("key", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("source_id", pa.string(), nullable=False),
    pa.field("split", pa.string()),
    pa.field("image_url", pa.string()),
    # The image's identity across sources (capbuild.builders.image_ref): coco:ID, flickr:ID, commons:FILE, ...
    pa.field("image_ref", pa.string()),
    pa.field("caption", pa.string()),
    pa.field("captions", pa.list_(pa.string())),
    pa.field("lang", pa.string()),
    pa.field("caption_orig", pa.string()),
    # The source-language `captions` of a translated row (what was translated); null for a row
    # whose `captions` are as the source had them.
    pa.field("captions_orig", pa.list_(pa.string())),
    pa.field("lang_orig", pa.string()),
    pa.field("meta", pa.string()),
]

# Columns that only rejected rows carry: which filter dropped the row, and the value that failed.
REJECT_FIELDS: list[pa.Field] = [pa.field("filter", pa.string()), pa.field("filter_value", pa.string())]

PART_PATTERN = "part-*.parquet"


def make_key(source: str, source_id: str) -> str:
    """A stable, unique sample key derived from (source, source id): 16 hex digits, no dot."""
    digest = hashlib.blake2b(f"{source}\x1f{source_id}".encode(), digest_size=8)
    return digest.hexdigest()


def caption_schema(scores: Mapping[str, pa.DataType] | None = None) -> pa.Schema:
    """The caption-table schema with the score columns the text stage's steps declare appended
    (see capbuild.stages.text.plan.Plan.scores)."""
    base = {f.name for f in BASE_FIELDS}
    clash = base.intersection(scores or {})
    if clash:
        raise ValueError(f"score columns {sorted(clash)} would replace base columns of the caption table")
    return pa.schema(BASE_FIELDS + [pa.field(name, dtype) for name, dtype in (scores or {}).items()])


def rejected_schema(scores: Mapping[str, pa.DataType] | None = None) -> pa.Schema:
    """The schema of rejected/ parts: the caption table plus filter name and failing value."""
    return pa.schema(list(caption_schema(scores)) + REJECT_FIELDS)


def score_fields(schema: pa.Schema) -> dict[str, pa.DataType]:
    """The score columns of a caption table or rejected part (what is neither base nor reject field)."""
    fixed = {f.name for f in BASE_FIELDS} | {f.name for f in REJECT_FIELDS}
    return {f.name: f.type for f in schema if f.name not in fixed}


def make_row(
    *,
    source: str,
    source_id: str,
    captions: list[str],
    lang: str,
    image_url: str | None,
    image_ref: str | None = None,
    split: str | None = None,
    caption_orig: str | None = None,
    captions_orig: list[str] | None = None,
    lang_orig: str | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One caption-table row. `caption` is the first of `captions`; `caption_orig` and `lang_orig`
    default to it and `lang`, `captions_orig` to null (the captions are the source's own)."""
    caption = captions[0] if captions else ""
    return {
        "key": make_key(source, source_id),
        "source": source,
        "source_id": source_id,
        "split": split,
        "image_url": image_url,
        "image_ref": image_ref,
        "caption": caption,
        "captions": list(captions),
        "lang": lang,
        "caption_orig": caption if caption_orig is None else caption_orig,
        "captions_orig": None if captions_orig is None else list(captions_orig),
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
    path = part_path(folder, index)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
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
