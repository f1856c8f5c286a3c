"""A mixture of builds as one dataset: MIX/mixture.json (shards and sampling weights for a trainer),
a combined MIX/manifest.json and a card, pointing at the builds' shards (or copies with --copy).

A source's `weight` is its relative share of the training samples: the next sample is drawn from
source i with probability weight_i / sum(weights), however many samples each source holds.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from capbuild import __version__
from capbuild.cards.card import (
    CARD_NAME,
    TASK_CATEGORIES,
    card_from,
    licences_section,
    license_metadata,
    limitations_section,
    md_table,
    size_category,
)
from capbuild.cards.facts import BuildFacts, hf_split_name, load_facts, shard_pattern
from capbuild.errors import ConfigError
from capbuild.layout import SIZES as SIZES_NAME
from capbuild.layout import BuildLayout
from capbuild.manifest import save_manifest

MIXTURE_NAME = "mixture.json"
MIXTURE_FORMAT = "capbuild-mixture/1"
TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class MixtureSource:
    """One build of a mixture as a trainer reads it: absolute shard paths per split."""

    name: str
    weight: float
    probability: float
    shards: list[str]
    samples: int
    splits: dict[str, list[str]]


def parse_weights(text: str | None, count: int | None = None) -> list[float]:
    """'3,1' -> [3.0, 1.0]; equal weights when absent (none when `count` is None). With `count`, one
    weight per build is required."""
    if not text:
        return [1.0] * (count or 0)
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError as err:
        raise ConfigError(f"--weights must be numbers separated by commas, like 3,1 (got {text!r})") from err
    if count is not None and len(weights) != count:
        raise ConfigError(f"--weights has {len(weights)} value(s) for {count} build(s); give one weight per build")
    if any(w <= 0 for w in weights):
        raise ConfigError(f"--weights must be positive (got {text!r})")
    return weights


def make_mixture(builds: list[Path], weights: list[float], out: Path, copy: bool = False) -> dict[str, Any]:
    """Write MIX/mixture.json, MIX/manifest.json and MIX/README.md; returns the mixture."""
    if len(builds) != len(weights):
        raise ConfigError(f"{len(weights)} weight(s) for {len(builds)} build(s); give one weight per build")
    facts = [_mixable(load_facts(b)) for b in builds]
    names = _unique_names([f.out.resolve().name for f in facts])
    out.mkdir(parents=True, exist_ok=True)
    if copy:
        for name, f in zip(names, facts, strict=True):
            _copy_shards(f, BuildLayout(out).shards / name)
    entries = [
        _entry(name, f, weight, sum(weights), out, copy) for name, f, weight in zip(names, facts, weights, strict=True)
    ]
    mixture = {
        "format": MIXTURE_FORMAT,
        "weighting": "weight: relative share of training samples drawn from the source; probability = weight / sum",
        "paths": "relative to this file's folder" if copy else "absolute",
        "sources": entries,
        "samples": _split_totals(entries),
        "capbuild_train": {"data": [e["pattern"] for e in entries], "weights": [e["weight"] for e in entries]},
        "open_clip": _open_clip(entries),
    }
    (out / MIXTURE_NAME).write_text(json.dumps(mixture, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    save_manifest(out, _combined_manifest(names, facts, weights, copy))
    _mixture_card(names, facts, entries, copy, out).save(out / CARD_NAME)
    return mixture


def read_mixture(path: str | Path) -> list[MixtureSource]:
    """The sources of MIX/mixture.json (or MIX/), with shard paths made absolute."""
    path = Path(path)
    path = path / MIXTURE_NAME if path.is_dir() else path
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("format") != MIXTURE_FORMAT:
        raise ConfigError(f"{path} is not a capbuild mixture (format {data.get('format')!r}, wanted {MIXTURE_FORMAT})")

    def resolve(shards: list[str]) -> list[str]:
        return [str((path.parent / s).resolve()) for s in shards]

    return [
        MixtureSource(
            name=s["name"],
            weight=s["weight"],
            probability=s["probability"],
            shards=resolve(s["shards"]),
            samples=s["samples"],
            splits={split: resolve(part["shards"]) for split, part in s["splits"].items()},
        )
        for s in data["sources"]
    ]


def _mixable(facts: BuildFacts) -> BuildFacts:
    if not facts.splits.get(TRAIN_SPLIT) or not facts.split_samples()[TRAIN_SPLIT]:
        raise ConfigError(f"{facts.out} has no train samples in shards; a mixture mixes builds with images")
    return facts


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return unique


def _copy_shards(facts: BuildFacts, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for name in sorted(facts.sizes):
        shutil.copy2(BuildLayout(facts.out).shards / name, target / name)
    shutil.copy2(BuildLayout(facts.out).sizes, target / SIZES_NAME)


def _entry(name: str, facts: BuildFacts, weight: float, total: float, out: Path, copy: bool) -> dict[str, Any]:
    folder = f"shards/{name}/" if copy else f"{(facts.out / 'shards').resolve()}/"
    samples = facts.split_samples()
    splits = {
        split: {
            "shards": [folder + s for s in shards],
            "pattern": shard_pattern(folder, shards),
            "samples": samples[split],
        }
        for split, shards in facts.splits.items()
        if shards
    }
    train = splits[TRAIN_SPLIT]
    return {
        "name": name,
        "build": str(facts.out.resolve()),
        "fingerprint": facts.manifest.get("fingerprint"),
        "weight": weight,
        "probability": round(weight / total, 6),
        "shards": train["shards"],
        "pattern": train["pattern"],
        "samples": train["samples"],
        "splits": splits,
    }


def train_command(out: str | Path) -> str:
    """The `capbuild train` option that trains on a mixture's train shards with its weights (from
    any working directory: `--data` reads MIX/mixture.json, whose copied shards are relative to it)."""
    return f"capbuild train --data {out}"


def _split_totals(entries: list[dict[str, Any]]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for entry in entries:
        for split, part in entry["splits"].items():
            totals[split] = totals.get(split, 0) + part["samples"]
    return totals


def _open_clip(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The same mixture for open_clip. It draws whole shards, source i's with weight f_i each, so
    source i's share of samples is proportional to f_i * samples_i: f_i = probability_i / samples_i,
    scaled so that the smallest factor is 1."""
    factors = [e["probability"] / e["samples"] for e in entries]
    smallest = min(factors)
    return {
        "train_data": "::".join(e["pattern"] for e in entries),
        "train_data_upsampling_factors": "::".join(f"{f / smallest:.6g}" for f in factors),
        "train_num_samples": sum(e["samples"] for e in entries),
        "dataset_resampled": True,
    }


def _combined_manifest(names: list[str], facts: list[BuildFacts], weights: list[float], copy: bool) -> dict[str, Any]:
    sources: dict[str, Any] = {}
    for f in facts:
        sources.update(f.sources)
    return {
        "capbuild": __version__,
        "kind": "mixture",
        "copied": copy,
        "sources": sources,
        "builds": [
            {"name": name, "path": str(f.out.resolve()), "weight": weight, "manifest": f.manifest}
            for name, f, weight in zip(names, facts, weights, strict=True)
        ],
        "counts": {
            "source_rows": sum(f.manifest["counts"]["text"]["source_rows"] for f in facts),
            "captions": sum(f.captions.rows for f in facts),
            "samples": sum(f.samples for f in facts),
        },
    }


def _mixture_card(
    names: list[str], facts: list[BuildFacts], entries: list[dict[str, Any]], copy: bool, out: Path
) -> DatasetCard:
    sources: dict[str, Any] = {}
    for f in facts:
        sources.update(f.sources)
    languages = sorted({lang for f in facts for lang in f.captions.languages})
    translated = any(f.captions.translated for f in facts)
    samples = sum(f.samples for f in facts)
    configs = None
    if copy:
        by_split: dict[str, list[str]] = {}
        for entry in entries:
            for split, part in entry["splits"].items():
                by_split.setdefault(hf_split_name(split), []).extend(part["shards"])
        configs = [{"config_name": "default", "data_files": [{"split": s, "path": p} for s, p in by_split.items()]}]
    data = DatasetCardData(
        language=languages or None,
        multilinguality="monolingual" if len(languages) <= 1 else "multilingual",
        task_categories=TASK_CATEGORIES,
        size_categories=size_category(samples),
        source_datasets=sorted(sources),
        pretty_name=f"Mixture of {', '.join(names)}",
        tags=["capbuild", "image-text", "clip", "webdataset", "mixture"],
        configs=configs,
        **license_metadata(sources),
    )
    rows = [
        [
            e["name"],
            e["weight"],
            e["probability"],
            *(e["splits"].get(split, {}).get("samples", 0) for split in _split_totals(entries)),
            f.captions.rows,
            f"`{e['fingerprint']}`",
        ]
        for e, f in zip(entries, facts, strict=True)
    ]
    headers = ["build", "weight", "probability", *(f"{s} samples" for s in _split_totals(entries))]
    headers += ["captions", "fingerprint"]
    open_clip = _open_clip(entries)
    where = (
        "The shards are copied under `shards/<build>/`; `datasets.load_dataset` on this folder reads them all, "
        "unweighted."
        if copy
        else "The shards stay in the builds' folders (absolute paths in `mixture.json`); copy them with `--copy` "
        "to make this folder self-contained."
    )
    body = "\n\n".join(
        [
            f"# Mixture of {', '.join(names)}\n\n{samples:,} image-caption pairs from {len(names)} capbuild builds, "
            f"captions in {', '.join(languages)}. {where}",
            "## Builds\n\nA build's weight is its share of the training samples drawn (`probability`), whatever "
            "its size.\n\n" + md_table(headers, rows),
            "## Train on it\n\n`mixture.json` lists each build's shards per split, its weight and sample counts; "
            f"`capbuild.cards.mix.read_mixture` reads it.\n\n```bash\n{train_command(out)} ...\n```\n\n"
            "With open_clip, whose `--train-data-upsampling-factors` weigh shards, not samples:\n\n"
            "```bash\npython -m open_clip_train.main --dataset-type webdataset "
            f"--dataset-resampled \\\n    --train-data '{open_clip['train_data']}' \\\n"
            f"    --train-data-upsampling-factors '{open_clip['train_data_upsampling_factors']}' "
            f"--train-num-samples {open_clip['train_num_samples']} ...\n```",
            licences_section(sources),
            limitations_section(sources, translated),
        ]
    )
    return card_from(data, body)
