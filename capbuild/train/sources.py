"""What a `--data` value names: shard patterns, capbuild build folders, `capbuild mix` folders.

capbuild train --data it-wit/ --data mix/      a build's train split; a mixture's sources and weights
capbuild eval --data xtd10-it/ --data 'x/{00000..00003}.tar'   a build's test split (or its only split)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from capbuild.cards.facts import read_sizes, shard_splits
from capbuild.cards.mix import MIXTURE_NAME, read_mixture
from capbuild.errors import ConfigError
from capbuild.manifest import MANIFEST_NAME, load_manifest
from capbuild.train.data import expand_shards

TRAIN_SPLIT = "train"
TEST_SPLIT = "test"


def is_build(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST_NAME).is_file() and not (path / MIXTURE_NAME).is_file()


def is_mixture(path: Path) -> bool:
    return path.is_dir() and (path / MIXTURE_NAME).is_file()


def build_splits(out: Path) -> dict[str, list[str]]:
    """Split -> shard paths of a finished build (empty when it has no shards)."""
    manifest = load_manifest(out)
    if manifest is None:
        raise ConfigError(f"{out} holds no {MANIFEST_NAME}: is it a capbuild build folder?")
    sizes = read_sizes(out)
    return {
        split: [str(out / "shards" / name) for name in names if sizes.get(name)]
        for split, names in shard_splits(manifest, sizes).items()
    }


def split_shards(out: Path, split: str) -> list[str]:
    """The shards of one split of a build, or an error naming the splits it has."""
    splits = {s: shards for s, shards in build_splits(out).items() if shards}
    if not splits:
        raise ConfigError(f"{out} has no shards (built with --no-images?): nothing to read")
    if split not in splits:
        raise ConfigError(f"{out} has no {split!r} split in its shards (it has: {', '.join(splits)})")
    return splits[split]


@dataclass(frozen=True)
class EvalData:
    """One evaluation set: its name, its shards and the build folder they came from (if any)."""

    name: str
    urls: list[str]
    build: Path | None
    entry: str


def eval_data(entry: str) -> EvalData:
    """A --data value of `capbuild eval`: a build's test split (every split when it has only one), or shards."""
    path = Path(entry)
    if is_mixture(path):
        raise ConfigError(f"{entry} is a mixture (training data); evaluate on build folders or shards")
    if is_build(path):
        splits = {s: shards for s, shards in build_splits(path).items() if shards}
        if not splits:
            raise ConfigError(f"{entry} has no shards (built with --no-images?): nothing to evaluate on")
        if TEST_SPLIT in splits:
            urls = splits[TEST_SPLIT]
        elif len(splits) == 1:
            urls = next(iter(splits.values()))
        else:
            raise ConfigError(
                f"{entry} has splits {', '.join(splits)} but no 'test': give the shards of the one to evaluate on"
            )
        return EvalData(name=build_name(path), urls=urls, build=path, entry=entry)
    return EvalData(name=pattern_name(entry), urls=expand_shards(entry), build=None, entry=entry)


def build_name(out: Path) -> str:
    """A build's set name: its source (xtd10, coco, ...), else its folder name."""
    manifest = load_manifest(out) or {}
    sources = manifest.get("sources")
    if isinstance(sources, dict) and len(sources) == 1:
        return str(next(iter(sources)))
    return out.resolve().name


def pattern_name(pattern: str) -> str:
    """A shard pattern's set name: its folder (the build's folder for OUT/shards/...)."""
    head = pattern.split("{", 1)[0].split("*", 1)[0]
    folder = Path(head) if head.endswith("/") or Path(head).is_dir() else Path(head).parent
    folder = folder.resolve() if "://" not in pattern else folder
    return folder.parent.name if folder.name == "shards" and folder.parent.name else folder.name or pattern


def unique_names(data: list[EvalData]) -> list[EvalData]:
    """Two --data of the same name (two xtd10 builds) are told apart by their folders."""
    counts: dict[str, int] = {}
    for item in data:
        counts[item.name] = counts.get(item.name, 0) + 1
    renamed = []
    for item in data:
        if counts[item.name] > 1:
            label = (item.build or Path(item.entry)).resolve().name
            item = EvalData(f"{item.name}:{label}", item.urls, item.build, item.entry)
        renamed.append(item)
    if len({d.name for d in renamed}) != len(renamed):
        raise ConfigError("the same --data is given twice")
    return renamed


def train_sources(data: list[str], weights: list[float]) -> tuple[list[list[str]], list[float]]:
    """Shard lists and weights of `capbuild train --data`: a pattern as it is, a build's train split,
    a mixture's sources (each weighted by the mixture's probability times the --data's weight)."""
    given = weights or [1.0] * len(data)
    sources: list[list[str]] = []
    resolved: list[float] = []
    for entry, weight in zip(data, given, strict=True):
        path = Path(entry)
        if is_mixture(path):
            for source in read_mixture(path):
                sources.append(source.shards)
                resolved.append(weight * source.probability)
        elif is_build(path):
            sources.append(split_shards(path, TRAIN_SPLIT))
            resolved.append(weight)
        else:
            sources.append(expand_shards(entry))
            resolved.append(weight)
    return sources, (resolved if weights or len(resolved) != len(data) else [])


def builds_of(entry: str) -> list[Path]:
    """The build folders whose shards a --data value reads: the build itself, a mixture's builds, or
    the build above a shard pattern (OUT/shards/... -> OUT); none for shards outside a build."""
    path = Path(entry)
    if is_mixture(path):
        data = json.loads((path / MIXTURE_NAME).read_text(encoding="utf-8"))
        return [Path(s["build"]) for s in data.get("sources", []) if s.get("build")]
    if is_build(path):
        return [path]
    head = Path(entry.split("{", 1)[0].split("*", 1)[0])
    for folder in (head, *head.parents):
        if is_build(folder):
            return [folder]
    return []
