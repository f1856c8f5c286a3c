"""Shards in table order, written as img2dataset finishes them.

img2dataset writes a shard's samples in the order its download threads finish them, keyed by
position. `TableOrderWriter` takes the place of its WebDatasetSampleWriter (same constructor and
write/close calls): it spools the samples and, when img2dataset closes the shard, writes the tar and
the parquet in input order with the caption table's key as the sample key, inside the worker process,
while the other workers keep downloading. img2dataset marks a shard done (its _stats.json) only after
close(), so a killed build redoes the shard whole. The pyspark and ray distributors keep
img2dataset's own writer (their executors need not have capbuild installed) and the image stage
rewrites their shards afterwards with `rewrite_shard`; both ways give the same bytes.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capbuild.images.shards import OrderedShardWriter, Sample, read_samples, write_samples

# The caption table's key, carried through img2dataset as an extra column (img2dataset reserves `key`
# for its positional key); it becomes the sample key when the shard is written in table order.
TABLE_KEY = "table_key"


class TableOrderWriter:
    """img2dataset's sample-writer interface: write(image, key, caption, meta) per sample, close() per shard."""

    def __init__(
        self,
        shard_id: int,
        output_folder: str,
        save_caption: bool,
        oom_shard_count: int,
        schema: pa.Schema,
        encode_format: str,
    ) -> None:
        name = f"{shard_id:0{oom_shard_count}d}"
        self.tar = OrderedShardWriter(Path(output_folder) / f"{name}.tar")
        self.parquet = Path(output_folder) / f"{name}.parquet"
        self.schema = schema
        self.save_caption = save_caption
        self.encode_format = encode_format
        self.rows: list[dict[str, Any]] = []

    def write(self, image: bytes | None, key: str, caption: str | None, meta: dict[str, Any]) -> None:
        if image is not None:
            fields = {self.encode_format: image}
            if self.save_caption:
                fields["txt"] = (str(caption) if caption is not None else "").encode()
            table_key, sample_json = table_keyed_json(meta)
            fields["json"] = sample_json
            self.tar.add(key, table_key, fields)
        self.rows.append(meta)

    def close(self) -> None:
        self.tar.close()
        columns = {name: [row[name] for row in self.rows] for name in self.schema.names}
        write_in_table_order(pa.Table.from_pydict(columns, self.schema), self.parquet)


def table_keyed_json(meta: dict[str, Any]) -> tuple[str, bytes]:
    """A sample's KEY.json with the caption table's key as `key` (where img2dataset's key stood)."""
    meta = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in meta.items()}
    meta["key"] = meta.pop(TABLE_KEY)
    return meta["key"], json.dumps(meta, ensure_ascii=False).encode()


def write_in_table_order(samples: pa.Table, dst: Path) -> pa.Table:
    """img2dataset's per-sample table sorted into input order, the table key as `key`; written atomically."""
    samples = samples.take(pc.sort_indices(samples["key"]))
    table_keys = samples[TABLE_KEY]
    samples = samples.drop_columns(["key", TABLE_KEY]).add_column(0, "key", table_keys)
    tmp = dst.with_name(dst.name + ".tmp")
    pq.write_table(samples, tmp)
    tmp.replace(dst)
    return samples


def in_table_order(parquet: Path) -> bool:
    """Whether a shard's parquet is already in table order (written by TableOrderWriter)."""
    return TABLE_KEY not in pq.read_schema(parquet).names


def rewrite_shard(raw: Path, final: Path) -> None:
    """Rewrite a shard of img2dataset's own writer (raw.tar, raw.parquet) into table order at final.*."""
    write_in_table_order(pq.read_table(raw.with_suffix(".parquet")), final.with_suffix(".parquet"))
    by_key = dict(read_samples(raw.with_suffix(".tar")))
    write_samples((_with_table_key(by_key[raw_key]) for raw_key in sorted(by_key)), final.with_suffix(".tar"))


def _with_table_key(fields: dict[str, bytes]) -> Sample:
    table_key, sample_json = table_keyed_json(json.loads(fields["json"]))
    return table_key, {**fields, "json": sample_json}


def use_table_order_writer() -> None:
    """Make img2dataset write its webdataset shards with TableOrderWriter (img2dataset picks the writer
    class by output format, with no registry; the workers receive the class by reference)."""
    # `img2dataset.main` is also the name of a function in img2dataset's package namespace.
    importlib.import_module("img2dataset.main").WebDatasetSampleWriter = TableOrderWriter
