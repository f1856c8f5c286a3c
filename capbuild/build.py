"""Runs a build's stages into the build folder, with resume and the manifest.

    builder -> text stage (the plan: clean, unique_key, --filter, translate, --post-filter) -> captions/ + rejected/
            -> images (img2dataset) -> shards/ -> card (README.md)

Each stage is recorded as done in manifest.json only when its output is complete, so a killed
build re-run with the same command skips finished stages (and img2dataset skips finished shards).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from capbuild import __version__
from capbuild.builders.base import Builder
from capbuild.cards.card import write_card
from capbuild.errors import BuildConflictError
from capbuild.images.stage import ImageOptions, run_image_stage
from capbuild.manifest import fingerprint, load_manifest, package_versions, save_manifest
from capbuild.stages.text.executors import ExecutorOptions
from capbuild.stages.text.plan import Plan, make_plan
from capbuild.stages.text.stage import run_text_stage

WORK_DIR = ".work"
OWNED_PATHS = ("captions", "rejected", "shards", WORK_DIR, "manifest.json", "README.md")


@dataclass
class BuildRequest:
    """Everything a build needs: the builder, where to write, the text stage's plan (default: clean
    and unique_key in the builder's language; see make_plan), how to fetch images."""

    builder: Builder
    out: Path
    plan: Plan | None = None
    images: ImageOptions | None = field(default_factory=ImageOptions)
    overwrite: bool = False
    executor: ExecutorOptions = field(default_factory=ExecutorOptions)

    def __post_init__(self) -> None:
        if self.plan is None:
            self.plan = make_plan(self.builder.lang, [])

    def config(self) -> dict[str, Any]:
        """The build's output-deciding configuration (its fingerprint is computed from this)."""
        assert self.plan is not None
        return {
            "source": self.builder.info.name,
            "builder": self.builder.config(),
            "plan": self.plan.config(),
            "images": self.images.output_config() if self.images else None,
        }


def run_build(request: BuildRequest) -> dict[str, Any]:
    """Run (or resume) a build; returns the final manifest."""
    out = request.out
    assert request.plan is not None
    config = request.config()
    manifest = _open_manifest(out, config, request.overwrite)
    manifest["sources"] = {request.builder.info.name: asdict(request.builder.info)}
    work = out / WORK_DIR
    if not manifest["stages"]["text"]["done"]:
        started = time.monotonic()
        manifest["counts"]["text"] = run_text_stage(request.builder, request.plan, out, work, request.executor)
        _finish_stage(out, manifest, "text", started)
    if request.images is not None and not manifest["stages"]["images"]["done"]:
        started = time.monotonic()
        manifest["counts"]["images"] = run_image_stage(out / "captions", out, work / "images", request.images)
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
    elif existing is not None and digest not in (existing.get("fingerprint"), *existing.get("accepts", [])):
        raise BuildConflictError(
            f"{out} holds a build made with another configuration (fingerprint {existing.get('fingerprint')}, "
            f"this one {digest}). Re-run with --overwrite to replace it, or choose another --out."
        )
    elif existing is None and any(p.name in OWNED_PATHS for p in out.iterdir()):
        raise BuildConflictError(
            f"{out} holds build outputs but no manifest.json. Re-run with --overwrite to replace them."
        )
    elif existing is not None:
        return existing
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


def clear_build(out: Path) -> None:
    """Remove what a capbuild build writes in OUT (and nothing else)."""
    for name in OWNED_PATHS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
