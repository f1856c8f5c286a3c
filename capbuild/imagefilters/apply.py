"""Carrying the decisions out, shard by shard and caption part by caption part, each step atomic and
marked done in the work folder so that a killed run resumes where it stopped and ends byte-identical:

    shards/NNNNN.tar           the kept samples, in order, with phash and clip_score in KEY.json
    rejected/images/NNNNN.tar  the dropped samples (after any dropped by an earlier run), with
                               filter and filter_value in KEY.json
    captions/part-*.parquet    phash and clip_score columns; dropped rows move to
    rejected/part-imagefilters-RR-*.parquet  with filter and filter_value
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capbuild.atomic import atomic_path
from capbuild.imagefilters.specs import IMAGE_SCORES
from capbuild.images.shards import Sample, read_samples, write_samples
from capbuild.layout import BuildLayout
from capbuild.table import caption_schema, conform, part_files, rejected_schema, score_fields


def touch(marker: Path) -> None:
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()


def apply_shard(
    shard: Path, rejected_images: Path, work: Path, decisions: dict[str, dict[str, Any]]
) -> tuple[int, int]:
    """Split one shard into kept and rejected samples; returns (kept, dropped by this run).

    The shard and its earlier rejected tar are first moved into the work folder (marked `begun`), so
    that a re-run after a kill always reads the originals, never a half-applied result."""
    originals = work / "original"
    original, original_rejected = originals / shard.name, originals / f"{shard.stem}.rejected.tar"
    rejected = rejected_images / shard.name
    begun = work / "begun" / shard.name
    if not begun.exists():
        originals.mkdir(parents=True, exist_ok=True)
        if rejected.exists() and not original_rejected.exists():
            rejected.replace(original_rejected)
        if shard.exists() and not original.exists():
            shard.replace(original)
        touch(begun)
    kept: list[Sample] = []
    dropped: list[Sample] = []
    for key, fields in read_samples(original):
        row = decisions.get(key)
        if row is None:  # not seen by the pass (cannot happen for a shard it read); keep untouched
            kept.append((key, fields))
            continue
        sample = (key, with_scores(fields, row))
        (dropped if row["filter"] else kept).append(sample)
    earlier = list(read_samples(original_rejected)) if original_rejected.exists() else []
    if earlier or dropped:
        rejected_images.mkdir(parents=True, exist_ok=True)
        write_samples([*earlier, *dropped], rejected)
    write_samples(kept, shard)
    touch(work / "applied" / shard.name)
    original.unlink()
    original_rejected.unlink(missing_ok=True)
    return len(kept), len(dropped)


def with_scores(fields: dict[str, bytes], row: dict[str, Any]) -> dict[str, bytes]:
    """The sample's KEY.json with its phash and clip_score (and, if dropped, filter and value)."""
    meta = json.loads(fields["json"]) if "json" in fields else {}
    if row["phash"] is not None:
        meta["phash"] = row["phash"]
    if row["clip_score"] is not None:
        meta["clip_score"] = round(float(row["clip_score"]), 6)
    if row["filter"]:
        meta["filter"], meta["filter_value"] = row["filter"], row["filter_value"]
    return {**fields, "json": json.dumps(meta, ensure_ascii=False).encode()}


def update_captions(out: Path, work: Path, decisions: pa.Table, run: int) -> None:
    """Add the score columns to every caption part and move its dropped rows to rejected/."""
    paths = BuildLayout(out)
    for part in part_files(paths.captions):
        marker = work / "captions" / part.name
        if marker.exists():
            continue
        table = pq.read_table(part)
        found = pc.index_in(table["key"], decisions["key"])
        for column, dtype in IMAGE_SCORES.items():
            new = decisions[column].take(found)
            if column in table.column_names:
                new = pc.coalesce(new, table[column].cast(dtype))
                table = table.drop_columns([column])
            table = table.append_column(column, new.cast(dtype))
        filters, values = decisions["filter"].take(found), decisions["filter_value"].take(found)
        dropped = pc.fill_null(pc.is_valid(filters), False)
        scores = score_fields(table.schema)
        rejected_path = paths.rejected / f"part-imagefilters-{run:02d}-{part.stem.rpartition('-')[2]}.parquet"
        if not rejected_path.exists() and pc.any(dropped).as_py():
            rows = table.filter(dropped).append_column("filter", filters.filter(dropped))
            rows = rows.append_column("filter_value", values.filter(dropped))
            _write_atomic(conform(rows, rejected_schema(scores)), rejected_path)
        _write_atomic(conform(table.filter(pc.invert(dropped)), caption_schema(scores)), part)
        touch(marker)


def _write_atomic(table: pa.Table, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
