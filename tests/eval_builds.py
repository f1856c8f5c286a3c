"""Finished capbuild build folders written directly (caption table with image_ref, shards, manifest),
for the decontamination and evaluation tests: the same layout a build writes, without img2dataset.

A row's image is drawn from its image_ref, so rows of the same image (in several languages or
several builds) carry the same picture.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds
from PIL import Image

from capbuild.images.stage import SAMPLE_COLUMNS
from capbuild.table import REJECT_FIELDS, caption_schema, make_row


@functools.lru_cache(maxsize=65536)
def picture(image_ref: str, side: int = 32) -> bytes:
    """A JPEG drawn from the ref: a background colour and a square of another colour."""
    rng = random.Random(hashlib.sha1(image_ref.encode()).digest())
    image = Image.new("RGB", (side, side), tuple(rng.randrange(256) for _ in range(3)))
    x, y = rng.randrange(side // 2), rng.randrange(side // 2)
    image.paste(tuple(rng.randrange(256) for _ in range(3)), (x, y, x + side // 2, y + side // 2))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def row(source: str, source_id: str, image_ref: str, captions: list[str], lang: str, split: str) -> dict[str, Any]:
    return make_row(
        source=source,
        source_id=source_id,
        captions=captions,
        lang=lang,
        split=split,
        image_url=f"https://example.org/{image_ref}",
        image_ref=image_ref,
    )


def schema() -> pa.Schema:
    return caption_schema()


def write_build(out: Path, source: str, rows: list[dict[str, Any]], shard_size: int = 16) -> Path:
    """A finished build of `rows`: captions/ (two parts), empty rejected/, shards per split, manifest."""
    table = pa.Table.from_pylist(rows, schema=schema())
    half = len(rows) // 2
    for index, part in enumerate((table.slice(0, half), table.slice(half))):
        (out / "captions").mkdir(parents=True, exist_ok=True)
        pq.write_table(part, out / "captions" / f"part-{index:05d}.parquet")
    (out / "rejected").mkdir()
    pq.write_table(pa.schema(list(schema()) + REJECT_FIELDS).empty_table(), out / "rejected" / "part-00000.parquet")
    shards = out / "shards"
    shards.mkdir()
    sizes: dict[str, int] = {}
    splits: dict[str, list[str]] = {}
    per_shard: dict[str, Any] = {}
    for split in dict.fromkeys(r["split"] for r in rows):
        chosen = [r for r in rows if r["split"] == split]
        for start in range(0, len(chosen), shard_size):
            name = f"{len(sizes):05d}.tar"
            batch = chosen[start : start + shard_size]
            with wds.TarWriter(str(shards / name), mtime=0.0) as sink:
                for r in batch:
                    meta = {c: r[c] for c in SAMPLE_COLUMNS} | {"key": r["key"]}
                    meta["url"] = r["image_url"]
                    sink.write({"__key__": r["key"], "jpg": picture(r["image_ref"]), "txt": r["caption"], "json": meta})
            status = {"key": [r["key"] for r in batch], "status": ["success"] * len(batch)}
            status["source"] = [r["source"] for r in batch]
            pq.write_table(pa.table(status), shards / name.replace(".tar", ".parquet"))
            sizes[name] = len(batch)
            splits.setdefault(split, []).append(name)
            per_shard[name] = {"attempted": len(batch), "success": len(batch), "success_rate": 1.0, "failed": {}}
    (shards / "sizes.json").write_text(json.dumps(sizes))
    manifest = {
        "capbuild": "test",
        "fingerprint": hashlib.sha256(source.encode()).hexdigest()[:16],
        "config": {"source": source, "builder": {}, "filters": [], "filter_options": {}, "images": None},
        "versions": {},
        "sources": {source: {"name": source, "license": "other", "citation": "", "homepage": ""}},
        "stages": {"text": {"done": True}, "images": {"done": True}},
        "counts": {
            "text": {
                "source_rows": len(rows),
                "builder": {"skipped": {}, "repaired": {}},
                "filters": {},
                "captions": len(rows),
                "rejected": 0,
                "per_source": {source: {"captions": len(rows), "rejected": 0}},
            },
            "images": {
                "attempted": len(rows),
                "success": len(rows),
                "failed": {},
                "shards": len(sizes),
                "splits": splits,
                "per_source": {source: {"success": len(rows)}},
                "per_shard": per_shard,
            },
        },
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out
