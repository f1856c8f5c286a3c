"""Evaluation sets as sets of image identities, and which caption-table rows show one of their images.

An evaluation set is a capbuild build folder (its `test` rows, or every row when it has no test
split) or a text file of image_refs, one per line. A training row is contaminated when its
`image_ref` is one of the set's: the same photo, whichever source it came through (XTD10's COCO
train2014 images in a COCO train build, Multi30k's Flickr30k photos in Flickr8k).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capbuild.builders.image_ref import ref_kind
from capbuild.errors import ConfigError, InputError
from capbuild.filters.base import FilterResult, Runner
from capbuild.manifest import load_manifest
from capbuild.options import opt
from capbuild.stages.text.steps import Filter, register_step
from capbuild.table import part_files

FILTER_NAME = "decontaminate"
IMAGE_REF = "image_ref"
TEST_SPLIT = "test"


@dataclass(frozen=True)
class EvalSet:
    """The image identities of one evaluation set."""

    name: str
    langs: tuple[str, ...]
    refs: frozenset[str]
    origin: str

    @property
    def label(self) -> str:
        """'xtd10 (it)', 'xm3600 (ar, it)', or the name alone when the languages are unknown."""
        return f"{self.name} ({', '.join(self.langs)})" if self.langs else self.name

    @property
    def fingerprint(self) -> str:
        """A digest of the set's refs: two builds of the same images agree, whatever their folder."""
        return hashlib.sha256("\n".join(sorted(self.refs)).encode()).hexdigest()[:16]

    def record(self) -> dict[str, object]:
        """How the set is named in a manifest."""
        return {
            "set": self.name,
            "label": self.label,
            "langs": list(self.langs),
            "against": self.origin,
            "fingerprint": self.fingerprint,
            "images": len(self.refs),
        }


def load_eval_set(path: str | Path) -> EvalSet:
    """An evaluation set from a build folder or a file of image_refs (one per line, # comments)."""
    path = Path(path)
    if path.is_dir():
        return _from_build(path)
    if path.is_file():
        return _from_ref_file(path)
    raise InputError(f"--decontaminate {path}: no such build folder or image_ref file")


def load_eval_sets(paths: Sequence[str | Path]) -> list[EvalSet]:
    return [load_eval_set(p) for p in paths]


def _from_build(out: Path) -> EvalSet:
    manifest = load_manifest(out)
    if manifest is None or not (out / "captions").is_dir():
        raise ConfigError(f"{out} is not a finished capbuild build (no manifest.json or captions/)")
    tables = []
    for part in part_files(out / "captions"):
        schema = pq.read_schema(part)
        if IMAGE_REF not in schema.names:
            raise ConfigError(
                f"{out} has no image_ref column (built before capbuild recorded image identity): rebuild it, "
                "or give a file of image_refs"
            )
        tables.append(pq.read_table(part, columns=[IMAGE_REF, "split", "lang"]))
    table = pa.concat_tables(tables) if tables else pa.table({IMAGE_REF: [], "split": [], "lang": []})
    tests = table.filter(pc.equal(table["split"], TEST_SPLIT))
    rows = tests if len(tests) else table
    refs = frozenset(r for r in rows[IMAGE_REF].to_pylist() if r)
    langs = tuple(sorted({lang for lang in rows["lang"].to_pylist() if lang}))
    return EvalSet(name=_build_name(out, manifest), langs=langs, refs=refs, origin=str(out))


def _build_name(out: Path, manifest: dict[str, object]) -> str:
    sources = manifest.get("sources")
    if isinstance(sources, dict) and len(sources) == 1:
        return str(next(iter(sources)))
    config = manifest.get("config")
    source = config.get("source") if isinstance(config, dict) else None
    return str(source) if source else out.resolve().name


def _from_ref_file(path: Path) -> EvalSet:
    refs = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            ref_kind(text)
        except ValueError as err:
            raise ConfigError(f"{path}:{number}: {err}") from None
        refs.add(text)
    return EvalSet(name=path.stem, langs=(), refs=frozenset(refs), origin=str(path))


def owners(image_refs: Sequence[str | None], sets: Sequence[EvalSet]) -> list[EvalSet | None]:
    """For each row's image_ref, the first set that holds it (None: the row is clean)."""
    found: list[EvalSet | None] = []
    for ref in image_refs:
        found.append(next((s for s in sets if ref in s.refs), None) if ref else None)
    return found


def overlap_mask(table: pa.Table, sets: Sequence[EvalSet]) -> pa.ChunkedArray:
    """True for the rows of `table` whose image_ref is in any of the sets (vectorised)."""
    union = pa.array(sorted(set().union(*(s.refs for s in sets))), pa.string())
    return pc.fill_null(pc.is_in(table[IMAGE_REF], value_set=union), False)


def reject_value(eval_set: EvalSet, ref: str) -> str:
    """The `filter_value` of a dropped row: 'SET_NAME image_ref'."""
    return f"{eval_set.name} {ref}"


def judge(image_refs: Sequence[str | None], sets: Sequence[EvalSet]) -> tuple[list[bool], list[str]]:
    """The verdict of the `decontaminate` step on a batch: keep, and for a dropped row its value
    ('SET_NAME image_ref'; empty for a kept row)."""
    keep, values = [], []
    for ref, owner in zip(image_refs, owners(image_refs, sets), strict=True):
        keep.append(owner is None)
        values.append("" if owner is None else reject_value(owner, str(ref)))
    return keep, values


class DecontaminateRunner(Runner):
    """Drops the rows whose image_ref is in one of the evaluation sets."""

    name = FILTER_NAME

    def __init__(self, sets: Sequence[EvalSet]) -> None:
        self.sets = list(sets)

    def apply(self, batch: pa.Table) -> FilterResult:
        refs = batch[IMAGE_REF].to_pylist() if IMAGE_REF in batch.column_names else [None] * len(batch)
        keep, values = judge(refs, self.sets)
        return FilterResult(batch, keep, values)


@register_step
@dataclass(frozen=True)
class Decontaminate(Filter):
    """'decontaminate' (added by --decontaminate EVAL_OUT, before the user's filters): drops the rows
    showing an image of an evaluation set. The sets' folders or files are operational (a moved set is
    the same set); their names and fingerprints decide the output."""

    name: ClassVar[str] = FILTER_NAME
    named: ClassVar[bool] = False
    added_by: ClassVar[str] = "--decontaminate EVAL_OUT"
    against: tuple[str, ...] = field(
        default=(), metadata=opt("Evaluation builds or image_ref files.", operational=True, cli=False)
    )
    labels: tuple[str, ...] = field(default=(), metadata=opt("The sets' names and languages.", cli=False))
    fingerprints: tuple[str, ...] = field(default=(), metadata=opt("Digests of the sets' image_refs.", cli=False))

    def __post_init__(self) -> None:
        for name in ("against", "labels", "fingerprints"):  # lists when read back from a manifest
            object.__setattr__(self, name, tuple(getattr(self, name)))

    @classmethod
    def of(cls, against: Sequence[str]) -> Decontaminate:
        """The step for these evaluation sets (read now, so a bad one fails before the build starts)."""
        sets = load_eval_sets(against)
        return cls(tuple(str(a) for a in against), tuple(s.label for s in sets), tuple(s.fingerprint for s in sets))

    def describe(self) -> str:
        return f"{FILTER_NAME}={','.join(self.labels)}"

    def build(self) -> DecontaminateRunner:
        if len(self.against) != len(self.fingerprints):
            raise ConfigError("the decontaminate step needs its evaluation sets: give them with --decontaminate")
        sets = load_eval_sets(self.against)
        changed = [s.label for s, f in zip(sets, self.fingerprints, strict=True) if s.fingerprint != f]
        if changed:
            raise ConfigError(
                f"--decontaminate: {', '.join(changed)} changed since this build started; re-run with --overwrite"
            )
        return DecontaminateRunner(sets)

    def records(self, rejected: Sequence[tuple[str | None, str | None]]) -> list[dict[str, object]]:
        """The manifest's `decontamination` records from the rejected rows' (filter, image_ref) pairs."""
        sets = load_eval_sets(self.against)
        refs = [ref for name, ref in rejected if name == FILTER_NAME]
        counts = Counter(s.label for s in owners(refs, sets) if s is not None)
        return [{**s.record(), "stage": "text", "rows": counts[s.label], "samples": None} for s in sets]
