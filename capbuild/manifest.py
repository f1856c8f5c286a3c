"""OUT/manifest.json: the build's config and fingerprint, package versions, stage state and counts."""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from capbuild.atomic import write_json_atomic
from capbuild.errors import InputError
from capbuild.layout import MANIFEST, BuildLayout

MANIFEST_NAME = MANIFEST
TRACKED_PACKAGES = (
    "capbuild",
    "pyarrow",
    "ftfy",
    "img2dataset",
    "webdataset",
    "datasets",
    "spacy",
    "stanza",
    "ctranslate2",
    "transformers",
    "torch",
)


def fingerprint(config: dict[str, Any]) -> str:
    """A short digest of everything that decides a build's output."""
    canonical = json.dumps(config, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def manifest_path(out: Path) -> Path:
    return BuildLayout(out).manifest


def load_manifest(out: Path) -> dict[str, Any] | None:
    path = manifest_path(out)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def save_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write atomically so that a kill never leaves a half-written manifest."""
    write_json_atomic(manifest_path(out), manifest)


def require_manifest(out: Path) -> dict[str, Any]:
    """The manifest of build folder `out`; an InputError when it holds none."""
    manifest = load_manifest(out)
    if manifest is None:
        raise InputError(f"{out} holds no {MANIFEST_NAME}: is it a capbuild build folder (a build's --out)?")
    return manifest
