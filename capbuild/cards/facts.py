"""Facts about a build folder that the card, the report, publishing and mixtures share: its manifest,
its shards per split, its caption statistics and what each filter dropped per source."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capbuild.errors import ConfigError
from capbuild.layout import BuildLayout
from capbuild.manifest import require_manifest
from capbuild.stages.text.records import StepRecord, plan_steps, step_records
from capbuild.stages.text.steps import parse_spec
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
    # value -> captions, for histograms
    word_distribution: Counter[float] = field(default_factory=Counter, repr=False)
    propn_distribution: Counter[float] | None = field(default=None, repr=False)


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
    def steps(self) -> list[StepRecord]:
        """What each step of the text stage did, in plan order."""
        return step_records(self.manifest)

    @property
    def filter_specs(self) -> list[str]:
        return [record.spec for record in self.steps]

    @property
    def step_counts(self) -> dict[str, dict[str, int]]:
        """step spec -> rows in, kept, dropped, failed (errors)."""
        return {record.spec: record.counts for record in self.steps}

    @property
    def score_names(self) -> list[str]:
        """The score columns the build's steps added."""
        return list(dict.fromkeys(name for step in plan_steps(self.manifest) for name in step.get("scores", {})))

    @property
    def sources(self) -> dict[str, dict[str, Any]]:
        return self.manifest.get("sources", {})


def load_facts(out: Path) -> BuildFacts:
    """Read a build folder; a clear error when it is not a finished capbuild build."""
    manifest = require_manifest(out)
    if manifest.get("kind") == "mixture":
        raise ConfigError(f"{out} is a mixture (`capbuild mix` wrote it and its card); give a build folder")
    if not manifest.get("stages", {}).get("text", {}).get("done"):
        raise ConfigError(f"{out}: the build's caption stage is not finished; re-run the build command to resume it")
    sizes = read_sizes(out)
    return BuildFacts(
        out=out,
        manifest=manifest,
        splits=shard_splits(manifest, sizes),
        sizes=sizes,
        captions=caption_stats(BuildLayout(out).captions),
        drops=drops_by_source(BuildLayout(out).rejected, [record.spec for record in step_records(manifest)]),
    )


def read_sizes(out: Path) -> dict[str, int]:
    """shards/sizes.json (tar name -> samples), empty when the build has no shards."""
    path = BuildLayout(out).sizes
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


def iter_parts(folder: Path, columns: tuple[str, ...]) -> Iterator[pa.Table]:
    """The given columns (those present) of each parquet part of a folder, one part at a time."""
    for path in part_files(folder):
        present = [c for c in columns if c in pq.read_schema(path).names]
        yield pq.read_table(path, columns=present)


def read_columns(folder: Path, columns: tuple[str, ...]) -> pa.Table:
    """The given columns (those present) of every parquet part in a folder; empty when none."""
    tables = list(iter_parts(folder, columns))
    return pa.concat_tables(tables, promote_options="default") if tables else pa.table({})


def word_counts(captions: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Whitespace-separated words per caption."""
    return pc.list_value_length(pc.utf8_split_whitespace(pc.fill_null(captions, ""))).combine_chunks()


def value_counts(values: pa.Array | pa.ChunkedArray) -> Counter[float]:
    """value -> occurrences (nulls ignored), to summarise a column part by part."""
    counts = pc.value_counts(pc.drop_null(values)).to_pylist()
    return Counter({c["values"]: c["counts"] for c in counts})


def summary(counts: Counter[float]) -> dict[str, float]:
    """mean, median, min and max of the values counted; empty when none."""
    total = sum(counts.values())
    if not total:
        return {}
    ordered = sorted(counts.items())

    def nth(n: int) -> float:
        seen = 0
        for value, count in ordered:
            seen += count
            if seen > n:
                return value
        raise IndexError(n)

    median = (nth((total - 1) // 2) + nth(total // 2)) / 2
    mean = sum(v * c for v, c in ordered) / total
    return {"mean": round(mean, 3), "median": round(median, 3), "min": ordered[0][0], "max": ordered[-1][0]}


def caption_stats(folder: Path) -> CaptionStats:
    """Statistics of the caption table in `folder`, read part by part (exact medians from value counts)."""
    stats = CaptionStats()
    splits: Counter[str] = Counter()
    languages: set[str] = set()
    distinct: list[pa.Array] = []
    columns: dict[str, Counter[float]] = {"words": Counter(), "chars": Counter(), "captions": Counter()}
    propn: Counter[float] | None = None
    for part in iter_parts(folder, CAPTION_COLUMNS):
        stats.rows += part.num_rows
        splits.update(s or "train" for s in part["split"].to_pylist())
        languages |= set(part["lang"].drop_null().to_pylist()) | set(part["lang_orig"].drop_null().to_pylist())
        stats.translated += pc.sum(pc.not_equal(part["lang"], part["lang_orig"])).as_py() or 0
        distinct.append(pc.unique(part["caption"]))
        columns["words"].update(value_counts(word_counts(part["caption"])))
        columns["chars"].update(value_counts(pc.utf8_length(part["caption"])))
        columns["captions"].update(value_counts(pc.list_value_length(part["captions"])))
        if "propn_ratio" in part.column_names:
            propn = (propn or Counter()) + value_counts(part["propn_ratio"])
    stats.per_split = dict(sorted(splits.items()))
    stats.languages = sorted(languages)
    stats.unique_captions = len(pc.unique(pa.chunked_array(distinct, pa.string()))) if distinct else 0
    stats.words = summary(columns["words"])
    stats.chars = summary(columns["chars"])
    stats.captions_per_image = summary(columns["captions"])
    stats.propn_ratio = (summary(propn) or None) if propn is not None else None
    stats.word_distribution, stats.propn_distribution = columns["words"], propn
    return stats


def drops_by_source(folder: Path, filter_specs: list[str]) -> dict[str, dict[str, int]]:
    """source -> filter spec -> rows that filter dropped (rejected/ records the filter's name)."""
    spec_of = {parse_spec(spec)[0]: spec for spec in filter_specs}
    drops: dict[str, Counter[str]] = {}
    for part in iter_parts(folder, ("source", "filter")):
        for source, name in zip(part["source"].to_pylist(), part["filter"].to_pylist(), strict=True):
            drops.setdefault(source, Counter())[spec_of.get(name, name)] += 1
    return {source: dict(counts) for source, counts in sorted(drops.items())}


def shard_pattern(prefix: str, names: list[str]) -> str:
    """One brace pattern (webdataset, open_clip) for shard names such as 00003.tar..00007.tar:
    a range when they are consecutive, a list otherwise."""
    if not names:
        raise ConfigError("no shards to name")
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
