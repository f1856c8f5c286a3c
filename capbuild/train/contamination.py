"""Did the model see the evaluation images in training? A capbuild run records its --data; their build
manifests say which evaluation sets they were decontaminated against, and their caption tables'
image_ref column says how many of a set's images they hold."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from capbuild.filters.decontaminate import IMAGE_REF, EvalSet, load_eval_set
from capbuild.manifest import load_manifest
from capbuild.table import part_files
from capbuild.train.config import CONFIG_NAME
from capbuild.train.sources import EvalData, builds_of

DECONTAMINATION_KEY = "decontamination"


def training_data(model: str | Path) -> list[str] | None:
    """The --data a capbuild run was trained on; None for any other model."""
    config = Path(str(model)) / CONFIG_NAME
    if not config.is_file():
        return None
    return list(json.loads(config.read_text(encoding="utf-8")).get("data", []))


def decontaminated_against(build: Path) -> set[str]:
    """Fingerprints of the evaluation sets a build was decontaminated against (its manifest)."""
    manifest = load_manifest(build) or {}
    return {r["fingerprint"] for r in manifest.get(DECONTAMINATION_KEY, []) if not r.get("pending")}


def shared_images(build: Path, eval_set: EvalSet) -> int | None:
    """Distinct images of the set found in the build's caption table; None when the table has no image_ref."""
    wanted = pa.array(sorted(eval_set.refs), pa.string())
    found: set[str] = set()
    for part in part_files(build / "captions"):
        if IMAGE_REF not in pq.read_schema(part).names:
            return None
        refs = pq.read_table(part, columns=[IMAGE_REF])[IMAGE_REF]
        found.update(refs.filter(pc.fill_null(pc.is_in(refs, value_set=wanted), False)).to_pylist())
    return len(found)


def contamination_warnings(model: str | Path, sets: list[EvalData]) -> list[str]:
    """One line per (training build, evaluation set) pair that was not decontaminated, with the shared
    image count when it can be counted; one per training input that is not a capbuild build."""
    data = training_data(model)
    if data is None:
        return []
    warnings: list[str] = []
    builds: list[Path] = []
    for entry in data:
        found = builds_of(entry)
        if not found:
            warnings.append(
                f"the model's training data {entry} is not a capbuild build found from here: its overlap with "
                "the evaluation sets cannot be checked"
            )
        builds.extend(b for b in found if b not in builds)
    for item in sets:
        if item.build is None:
            continue
        try:
            eval_set = load_eval_set(item.build)
        except ValueError as err:
            warnings.append(f"cannot check {item.name} for overlap with the training data: {err}")
            continue
        for build in builds:
            if eval_set.fingerprint in decontaminated_against(build):
                continue
            shared = shared_images(build, eval_set) if (build / "captions").is_dir() else None
            count = (
                f"{shared} of its {len(eval_set.refs)} images are in the training table"
                if shared is not None
                else "the overlap cannot be counted (the training build has no image_ref column)"
            )
            warnings.append(
                f"the model was trained on {build}, which was not decontaminated against {eval_set.label} "
                f"({item.entry}): {count}"
            )
    return warnings
