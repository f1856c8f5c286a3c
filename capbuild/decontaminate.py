"""`capbuild decontaminate OUT --against EVAL_OUT`: drop from a finished build the rows (and shard
samples) whose image is in an evaluation set.

Order, so that a kill at any point and a re-run give the same build:
1. per caption part, the overlapping rows go to rejected/part-NNNNN-decontaminate-DIGEST.parquet
   (filter `decontaminate`, value `SET_NAME image_ref`), then the part is rewritten without them;
   a part with nothing left to drop keeps the rejected file an earlier, killed run wrote;
2. the keys in those rejected files leave the shards (capbuild.images.shards, atomic per tar), the
   shards' status parquet and sizes.json;
3. counts go to the manifest ("decontaminated against xtd10 (it): N rows"), then the card.
Each file is replaced atomically (temporary file, then rename).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from capbuild.errors import ConfigError
from capbuild.filters.decontaminate import (
    FILTER_NAME,
    IMAGE_REF,
    EvalSet,
    load_eval_sets,
    overlap_mask,
    owners,
    reject_value,
)
from capbuild.images.shards import read_samples, write_samples
from capbuild.images.stage import SIZES_NAME
from capbuild.manifest import load_manifest, save_manifest
from capbuild.table import REJECT_FIELDS, part_files

MANIFEST_KEY = "decontamination"


def sets_digest(sets: Sequence[EvalSet]) -> str:
    """Names the rejected files of one decontamination (same sets, same order: same digest)."""
    text = "\n".join(f"{s.name}\x1f{s.fingerprint}" for s in sets)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def decontaminate_build(out: Path, against: Sequence[str | Path], show_progress: bool = True) -> list[dict[str, Any]]:
    """Drop `out`'s rows and samples whose image_ref is in any set of `against` (build folders or
    image_ref files); returns the manifest records, one per set."""
    manifest = load_manifest(out)
    if manifest is None or not manifest.get("stages", {}).get("text", {}).get("done"):
        raise ConfigError(f"{out} is not a finished capbuild build (its caption stage is not done)")
    sets = load_eval_sets(against)
    digest = sets_digest(sets)
    parts = part_files(out / "captions")
    with _progress(show_progress) as progress:
        task = progress.add_task("decontaminate: caption parts", total=len(parts))
        for part in parts:
            _decontaminate_part(part, out / "rejected", sets, digest)
            progress.advance(task)
        dropped = _dropped_rows(out / "rejected", sets)
        # The samples count is saved (pending) before any shard changes: a re-run after a kill
        # finds the samples already gone and keeps the count.
        records = _records(sets, dropped, _samples_to_remove(out / "shards", dropped), manifest)
        _update_manifest(out, manifest, records)
        _remove_samples(out / "shards", dropped, progress)
    for record in records:
        record.pop("pending")
    _update_manifest(out, manifest, records)
    from capbuild.cards.card import write_card

    write_card(out)
    return records


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not enabled
    )


def rejected_path(rejected: Path, part: Path, digest: str) -> Path:
    return rejected / f"{part.stem}-{FILTER_NAME}-{digest}.parquet"


def _decontaminate_part(part: Path, rejected: Path, sets: Sequence[EvalSet], digest: str) -> None:
    table = pq.read_table(part)
    if IMAGE_REF not in table.column_names:
        raise ConfigError(f"{part} has no image_ref column: rebuild the build with this capbuild version first")
    mask = overlap_mask(table, sets)
    if not pc.any(mask).as_py():
        return
    dropped = table.filter(mask)
    found = owners(dropped[IMAGE_REF].to_pylist(), sets)
    values = [reject_value(s, r) for s, r in zip(found, dropped[IMAGE_REF].to_pylist(), strict=True) if s]
    dropped = dropped.append_column(REJECT_FIELDS[0], pa.array([FILTER_NAME] * len(dropped), pa.string()))
    dropped = dropped.append_column(REJECT_FIELDS[1], pa.array(values, pa.string()))
    _write_atomic(dropped, rejected_path(rejected, part, digest))
    _write_atomic(table.filter(pc.invert(mask)), part)


def _write_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def _dropped_rows(rejected: Path, sets: Sequence[EvalSet]) -> dict[str, EvalSet]:
    """key -> set, of every row a decontamination (this run, a killed one, an earlier one) moved to
    rejected/ whose image is in one of `sets`."""
    dropped: dict[str, EvalSet] = {}
    for path in sorted(rejected.glob(f"part-*-{FILTER_NAME}-*.parquet")):
        table = pq.read_table(path, columns=["key", IMAGE_REF])
        for key, owner in zip(table["key"].to_pylist(), owners(table[IMAGE_REF].to_pylist(), sets), strict=True):
            if owner is not None:
                dropped[key] = owner
    return dropped


def _samples_to_remove(shards: Path, dropped: dict[str, EvalSet]) -> Counter[str]:
    """Samples of dropped rows still in the shards, per set label (member names only, no image read)."""
    present: Counter[str] = Counter()
    for tar in sorted(shards.glob("*.tar")):
        with tarfile.open(tar) as source:
            keys = {m.name.partition(".")[0] for m in source.getmembers() if m.isfile()}
        present.update(dropped[k].label for k in keys if k in dropped)
    return present


def _remove_samples(shards: Path, dropped: dict[str, EvalSet], progress: Progress) -> None:
    """Remove the dropped keys from every tar, its status parquet and sizes.json."""
    sizes_path = shards / SIZES_NAME
    if not sizes_path.is_file():
        return
    sizes = json.loads(sizes_path.read_text())
    tars = sorted(shards.glob("*.tar"))
    task = progress.add_task("decontaminate: shards", total=len(tars))
    gone = pa.array(list(dropped), pa.string())
    for tar in tars:
        status = tar.with_suffix(".parquet")
        if status.is_file():
            table = pq.read_table(status)
            keep = pc.invert(pc.is_in(table["key"], value_set=gone))
            if not pc.all(keep).as_py():
                _write_atomic(table.filter(keep), status)
        kept = [(key, fields) for key, fields in read_samples(tar) if key not in dropped]
        if tar.name in sizes and len(kept) != sizes[tar.name]:
            write_samples(kept, tar)
            sizes[tar.name] = len(kept)
        progress.advance(task)
    tmp = sizes_path.with_name(SIZES_NAME + ".tmp")
    tmp.write_text(json.dumps(sizes, indent=2, sort_keys=True) + "\n")
    tmp.replace(sizes_path)


def _records(
    sets: Sequence[EvalSet], dropped: dict[str, EvalSet], present: Counter[str], manifest: dict[str, Any]
) -> list[dict[str, Any]]:
    """One record per set; samples: those removed earlier (a finished or an interrupted run of the
    same decontamination) plus those still to remove."""
    rows = Counter(s.label for s in dropped.values())
    earlier = {(r["label"], r["fingerprint"]): r for r in manifest.get(MANIFEST_KEY, [])}
    records = []
    for s in sets:
        before = earlier.get((s.label, s.fingerprint))
        if before is not None and before.get("pending"):
            samples = before["samples"]
        else:
            samples = (before["samples"] if before else 0) + present[s.label]
        records.append(
            {**s.record(), "stage": "finished build", "rows": rows[s.label], "samples": samples, "pending": True}
        )
    return records


def describe(record: dict[str, Any]) -> str:
    """'decontaminated against xtd10 (it): 812 rows' (the manifest's and the card's wording)."""
    return f"decontaminated against {record['label']}: {record['rows']} rows"


def _update_manifest(out: Path, manifest: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Records replace earlier ones of the same set; counts are recomputed from the folder."""
    fresh = {(r["label"], r["fingerprint"]) for r in records}
    kept = [r for r in manifest.get(MANIFEST_KEY, []) if (r["label"], r["fingerprint"]) not in fresh]
    manifest[MANIFEST_KEY] = kept + records
    text = manifest.setdefault("counts", {}).setdefault("text", {})
    captions = _source_counts(out / "captions")
    rejected = _source_counts(out / "rejected")
    text["captions"], text["rejected"] = sum(captions.values()), sum(rejected.values())
    sources = sorted(set(captions) | set(rejected))
    text["per_source"] = {s: {"captions": captions[s], "rejected": rejected[s]} for s in sources}
    images = manifest["counts"].get("images")
    sizes_path = out / "shards" / SIZES_NAME
    if images and sizes_path.is_file():
        sizes = json.loads(sizes_path.read_text())
        images["success"] = sum(sizes.values())
        for name, shard in images.get("per_shard", {}).items():
            status = out / "shards" / Path(name).with_suffix(".parquet")
            if name in sizes and status.is_file():
                attempted = pq.read_metadata(status).num_rows
                shard.update(attempted=attempted, success=sizes[name])
                shard["success_rate"] = round(sizes[name] / attempted, 4) if attempted else None
        if images.get("per_shard"):
            images["attempted"] = sum(s["attempted"] for s in images["per_shard"].values())
    save_manifest(out, manifest)


def _source_counts(folder: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for part in part_files(folder):
        counts.update(pq.read_table(part, columns=["source"])["source"].to_pylist())
    return counts
