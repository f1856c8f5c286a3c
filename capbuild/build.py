"""Runs a build's stages into the build folder, with resume and the manifest.

    builder -> filters (clean first, then the user's, in order) -> captions/ + rejected/
            -> images (img2dataset) -> shards/ -> card (README.md)

Each stage is recorded as done in manifest.json only when its output is complete, so a killed
build re-run with the same command skips finished stages (and img2dataset skips finished shards).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from capbuild import __version__
from capbuild.builders.base import Builder
from capbuild.cards.card import write_card
from capbuild.errors import BuildConflictError
from capbuild.executors import ExecutorOptions
from capbuild.filters.base import OPERATIONAL_OPTIONS, Filter, FilterContext, make_filters
from capbuild.filters.chain import FilterChain
from capbuild.images.stage import ImageOptions, run_image_stage
from capbuild.layout import OWNED, WORK, BuildLayout
from capbuild.manifest import fingerprint, load_manifest, package_versions, save_manifest
from capbuild.options import is_operational
from capbuild.text_stage import run_text_stage

# Kept for callers of the old names.
WORK_DIR, OWNED_PATHS = WORK, OWNED
__all__ = ["BuildConflictError", "BuildRequest", "clear_build", "incomplete_build", "run_build"]


@dataclass
class BuildRequest:
    """Everything a build needs: the builder, where to write, which filters, how to fetch images."""

    builder: Builder
    out: Path
    filters: list[str] = field(default_factory=list)
    filter_options: dict[str, Any] = field(default_factory=dict)
    images: ImageOptions | None = field(default_factory=ImageOptions)
    overwrite: bool = False
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)

    def filter_context(self) -> FilterContext:
        return FilterContext(lang=self.builder.lang, options=self.filter_options)

    def config(self, filters: list[Filter] | None = None) -> dict[str, Any]:
        """The build's output-deciding configuration (its fingerprint is computed from this)."""
        filters = filters if filters is not None else make_filters(self.filters, self.filter_context())
        return {
            "source": self.builder.info.name,
            "builder": self.builder.config(),
            "filters": [f.describe() for f in filters],
            "filter_options": {k: v for k, v in self.filter_options.items() if k not in OPERATIONAL_OPTIONS},
            "images": self.images.output_config() if self.images else None,
        }


def preflight(request: BuildRequest) -> None:
    """Check what a build needs before anything is written: the builder's inputs and image folders, the
    filter specs and options, and the models the filters name (located, not loaded)."""
    request.builder.check(fetch_images=request.images is not None)
    make_filters(request.filters, request.filter_context())


def operational_options(request: BuildRequest) -> dict[str, Any]:
    """How the build ran (not fingerprinted): follow-up commands such as `retry` reuse these."""
    images = request.images
    if images is None:
        return {}
    return {"images": {f.name: getattr(images, f.name) for f in fields(images) if is_operational(f)}}


def run_build(request: BuildRequest) -> dict[str, Any]:
    """Run (or resume) a build; returns the final manifest."""
    out = request.out
    filters = make_filters(request.filters, request.filter_context())  # fails early on a bad spec
    config = request.config(filters)
    manifest = _open_manifest(out, config, request.overwrite)
    manifest["sources"] = {request.builder.info.name: asdict(request.builder.info)}
    manifest["operational"] = operational_options(request)
    paths = BuildLayout(out)
    work = paths.work
    if not manifest["stages"]["text"]["done"]:
        started = time.monotonic()
        manifest["counts"]["text"] = run_text_stage(
            request.builder,
            FilterChain(filters),
            request.filters,
            request.filter_context(),
            out,
            work,
            request.executor,
        )
        _finish_stage(out, manifest, "text", started)
    if request.images is not None and not manifest["stages"]["images"]["done"]:
        started = time.monotonic()
        manifest["counts"]["images"] = run_image_stage(paths.captions, out, work / "images", request.images)
        _finish_stage(out, manifest, "images", started)
    shutil.rmtree(work, ignore_errors=True)
    write_card(out)
    return manifest


def _open_manifest(out: Path, config: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The manifest to continue, a fresh one, or a refusal when OUT holds another build."""
    out.mkdir(parents=True, exist_ok=True)
    existing = load_manifest(out)
    digest = fingerprint(config)
    if overwrite:
        clear_build(out)
    elif existing is not None and existing.get("fingerprint") != digest and not incomplete_build(out):
        raise BuildConflictError(
            f"{out} holds a build made with another configuration (fingerprint {existing.get('fingerprint')}, "
            f"this one {digest}). Re-run with --overwrite to replace it, or choose another --out."
        )
    elif existing is None and BuildLayout(out).holds_outputs():
        raise BuildConflictError(
            f"{out} holds build outputs but no manifest.json. Re-run with --overwrite to replace them."
        )
    elif existing is not None and existing.get("fingerprint") == digest:
        return existing
    else:
        clear_build(out)  # an earlier build that never finished its text stage and wrote nothing else
    manifest = {
        "capbuild": __version__,
        "fingerprint": digest,
        "config": config,
        "versions": package_versions(),
        "sources": {},
        "stages": {"text": {"done": False}, "images": {"done": False}},
        "counts": {},
    }
    save_manifest(out, manifest)
    return manifest


def _finish_stage(out: Path, manifest: dict[str, Any], stage: str, started: float) -> None:
    manifest["stages"][stage] = {"done": True, "seconds": round(time.monotonic() - started, 2)}
    save_manifest(out, manifest)


def incomplete_build(out: Path) -> bool:
    """Whether OUT holds only the manifest (and work files) of a build whose text stage never completed:
    a corrected command may reuse such a folder without --overwrite."""
    manifest = load_manifest(out)
    if manifest is None or manifest.get("kind") == "mixture":
        return False
    return not manifest.get("stages", {}).get("text", {}).get("done") and not BuildLayout(out).holds_outputs()


def clear_build(out: Path) -> None:
    """Remove what a capbuild build writes in OUT (and nothing else)."""
    for path in BuildLayout(out).owned():
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
