"""Facts about a build folder that the card, the report, publishing and mixtures share: its manifest,
its shards per split, its caption statistics and what each filter dropped per source."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capbuild.filters.base import parse_spec
from capbuild.images.stage import SIZES_NAME
from capbuild.manifest import load_manifest
from capbuild.table import part_files

HF_SPLIT_NAME = re.compile(r"^\w+(\.\w+)*$")


@dataclass
class CaptionStats:
    """Statistics of the kept captions (the caption table after filters and translation)."""

    rows: int = 0
    per_split: dict[str, int] = field(default_factory=dict)
    languages: list[str] = field(default_factory=list)
    translated: int = 0
    unique_captions: int = 0
    words: dict[str, float] = field(default_factory=dict)
    chars: dict[str, float] = field(default_factory=dict)
    captions_per_image: dict[str, float] = field(default_factory=dict)
    propn_ratio: dict[str, float] | None = None


@dataclass
class BuildFacts:
    """One build folder, read once."""

    out: Path
    manifest: dict[str, Any]
    splits: dict[str, list[str]]
    sizes: dict[str, int]
    captions: CaptionStats
    drops: dict[str, dict[str, int]]

    @property
    def has_shards(self) -> bool:
        return bool(self.sizes)

    @property
    def samples(self) -> int:
        """Image-caption pairs in the shards (the caption rows when the build has no images)."""
        return sum(self.sizes.values()) if self.has_shards else self.captions.rows

    def split_samples(self) -> dict[str, int]:
        """Samples per split: shard sizes when there are shards, caption rows otherwise."""
        if not self.has_shards:
            return dict(self.captions.per_split)
        return {split: sum(self.sizes.get(s, 0) for s in shards) for split, shards in self.splits.items()}

    @property
    def filter_specs(self) -> list[str]:
        return list(self.manifest["config"].get("filters", []))

    @property
    def sources(self) -> dict[str, dict[str, Any]]:
        return self.manifest.get("sources", {})


def load_facts(out: Path) -> BuildFacts:
    """Read a build folder; a clear error when it is not a finished capbuild build."""
    manifest = load_manifest(out)
    if manifest is None:
        raise ValueError(f"{out} holds no manifest.json: is it a capbuild build folder?")
    if not manifest.get("stages", {}).get("text", {}).get("done"):
        raise ValueError(f"{out}: the build's caption stage is not finished; re-run the build command to resume it")
    sizes = read_sizes(out)
    return BuildFacts(
        out=out,
        manifest=manifest,
        splits=shard_splits(manifest, sizes),
        sizes=sizes,
        captions=caption_stats(read_columns(out / "captions", CAPTION_COLUMNS)),
        drops=drops_by_source(
            read_columns(out / "rejected", ("source", "filter")), manifest["config"].get("filters", [])
        ),
    )


def read_sizes(out: Path) -> dict[str, int]:
    """shards/sizes.json (tar name -> samples), empty when the build has no shards."""
    path = out / "shards" / SIZES_NAME
    return json.loads(path.read_text()) if path.exists() else {}


def shard_splits(manifest: dict[str, Any], sizes: dict[str, int]) -> dict[str, list[str]]:
    """Split -> shard names, from the image stage's record (every shard as train when it has none)."""
    images = manifest.get("counts", {}).get("images") or {}
    if images.get("splits"):
        return {split: list(shards) for split, shards in images["splits"].items()}
    return {"train": sorted(sizes)} if sizes else {}


def hf_split_name(split: str) -> str:
    """A split name that `datasets` accepts (word characters and dots)."""
    return split if HF_SPLIT_NAME.match(split) else re.sub(r"\W", "_", split)


CAPTION_COLUMNS = ("caption", "captions", "split", "lang", "lang_orig", "propn_ratio")


def read_columns(folder: Path, columns: tuple[str, ...]) -> pa.Table:
    """The given columns (those present) of every parquet part in a folder; empty when none."""
    tables = []
    for path in part_files(folder):
        present = [c for c in columns if c in pq.read_schema(path).names]
        tables.append(pq.read_table(path, columns=present))
    if not tables:
        return pa.table({})
    return pa.concat_tables(tables, promote_options="default")


def word_counts(captions: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Whitespace-separated words per caption."""
    return pc.list_value_length(pc.utf8_split_whitespace(pc.fill_null(captions, ""))).combine_chunks()


def summary(values: pa.Array | pa.ChunkedArray) -> dict[str, float]:
    """mean, median, min and max of a numeric column (nulls ignored); empty when no values."""
    values = pc.drop_null(values)
    if len(values) == 0:
        return {}
    median = pc.approximate_median(values).as_py()
    return {
        "mean": round(pc.mean(values).as_py(), 3),
        "median": round(median, 3),
        "min": pc.min(values).as_py(),
        "max": pc.max(values).as_py(),
    }


def caption_stats(table: pa.Table) -> CaptionStats:
    if table.num_rows == 0:
        return CaptionStats()
    splits = Counter(s or "train" for s in table["split"].to_pylist())
    languages = set(table["lang"].drop_null().to_pylist()) | set(table["lang_orig"].drop_null().to_pylist())
    translated = pc.sum(pc.not_equal(table["lang"], table["lang_orig"])).as_py() or 0
    stats = CaptionStats(
        rows=table.num_rows,
        per_split=dict(sorted(splits.items())),
        languages=sorted(languages),
        translated=translated,
        unique_captions=len(pc.unique(table["caption"])),
        words=summary(word_counts(table["caption"])),
        chars=summary(pc.utf8_length(table["caption"])),
        captions_per_image=summary(pc.list_value_length(table["captions"])),
    )
    if "propn_ratio" in table.column_names:
        stats.propn_ratio = summary(table["propn_ratio"]) or None
    return stats


def drops_by_source(rejected: pa.Table, filter_specs: list[str]) -> dict[str, dict[str, int]]:
    """source -> filter spec -> rows that filter dropped (rejected/ records the filter's name)."""
    spec_of = {parse_spec(spec)[0]: spec for spec in filter_specs}
    drops: dict[str, Counter[str]] = {}
    if rejected.num_rows:
        for source, name in zip(rejected["source"].to_pylist(), rejected["filter"].to_pylist(), strict=True):
            drops.setdefault(source, Counter())[spec_of.get(name, name)] += 1
    return {source: dict(counts) for source, counts in sorted(drops.items())}


def shard_pattern(prefix: str, names: list[str]) -> str:
    """One brace pattern (webdataset, open_clip) for shard names such as 00003.tar..00007.tar:
    a range when they are consecutive, a list otherwise."""
    if not names:
        raise ValueError("no shards to name")
    if len(names) == 1:
        return f"{prefix}{names[0]}"
    stems = [Path(n).stem for n in names]
    suffix = "".join(Path(names[0]).suffixes)
    numbers = [int(s) for s in stems] if all(s.isdigit() for s in stems) else []
    width = len(stems[0])
    consecutive = numbers and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    if consecutive and all(len(s) == width for s in stems):
        return f"{prefix}{{{stems[0]}..{stems[-1]}}}{suffix}"
    return f"{prefix}{{{','.join(stems)}}}{suffix}"
