"""Runs a build's stages into the build folder, with resume and the manifest.

    builder -> text stage (the plan: clean, unique_key, --filter, translate, --post-filter) -> captions/ + rejected/
            -> images (img2dataset) -> shards/ -> image filters (--image-filter) -> card (README.md)

Each stage is recorded as done in manifest.json only when its output is complete, so a killed
build re-run with the same command skips finished stages (and img2dataset skips finished shards).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from capbuild import __version__
from capbuild.builders.base import Builder
from capbuild.cards.card import write_card
from capbuild.errors import BuildConflictError, ConfigError
from capbuild.imagefilters.options import ImageFilterRequest
from capbuild.images.stage import ImageOptions, run_image_stage
from capbuild.layout import BuildLayout
from capbuild.manifest import fingerprint, load_manifest, package_versions, save_manifest
from capbuild.options import is_operational
from capbuild.stages.text.executors import ExecutorOptions
from capbuild.stages.text.plan import Plan, make_plan
from capbuild.stages.text.stage import run_text_stage
from capbuild.table import part_files

__all__ = ["BuildConflictError", "BuildRequest", "clear_build", "incomplete_build", "run_build"]


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
    image_filters: ImageFilterRequest | None = None

    def __post_init__(self) -> None:
        if self.plan is None:
            self.plan = make_plan(self.builder.lang, [])

    def config(self) -> dict[str, Any]:
        """The build's output-deciding configuration (its fingerprint is computed from this)."""
        assert self.plan is not None
        config = {
            "source": self.builder.info.name,
            "builder": self.builder.config(),
            "plan": self.plan.config(),
            "images": self.images.output_config() if self.images else None,
        }
        if self.image_filters is not None:  # absent otherwise, so builds without them keep their fingerprint
            config["image_filters"] = self.image_filters.config()
        return config


def preflight(request: BuildRequest) -> None:
    """Check what a build needs before anything is written: the builder's inputs and image folders, the
    filter specs and options, and the models the filters name (located, not loaded)."""
    request.builder.check(fetch_images=request.images is not None)
    assert request.plan is not None
    for step in request.plan.steps:
        step.check()
    if request.image_filters is not None:
        if request.images is None:
            raise ConfigError("--image-filter judges the images: it needs the image stage (drop --no-images)")
        request.image_filters.check()


def operational_options(request: BuildRequest) -> dict[str, Any]:
    """How the build ran (not fingerprinted): follow-up commands such as `retry` and `translate run` reuse
    these. The image stage's operational options, and each text step's."""
    assert request.plan is not None
    steps = {
        step.name: {f.name: getattr(step, f.name) for f in fields(step) if is_operational(f)}
        for step in request.plan.steps
    }
    recorded: dict[str, Any] = {"steps": {name: values for name, values in steps.items() if values}}
    if request.images is not None:
        recorded["images"] = {
            f.name: getattr(request.images, f.name) for f in fields(request.images) if is_operational(f)
        }
    return recorded


def run_build(request: BuildRequest) -> dict[str, Any]:
    """Run (or resume) a build; returns the final manifest."""
    out = request.out
    assert request.plan is not None
    config = request.config()
    manifest = _open_manifest(out, config, request.overwrite)
    manifest["sources"] = {request.builder.info.name: asdict(request.builder.info)}
    manifest["operational"] = operational_options(request)
    paths = BuildLayout(out)
    work = paths.work
    if not manifest["stages"]["text"]["done"]:
        started = time.monotonic()
        manifest["counts"]["text"] = run_text_stage(request.builder, request.plan, out, work, request.executor)
        record_decontamination(request.plan, paths.rejected, manifest)
        _finish_stage(out, manifest, "text", started)
    if request.images is not None and not manifest["stages"]["images"]["done"]:
        started = time.monotonic()
        manifest["counts"]["images"] = run_image_stage(paths.captions, out, work / "images", request.images)
        _finish_stage(out, manifest, "images", started)
    if request.images is not None and request.image_filters is not None:
        manifest = request.image_filters.run(out, request.executor)  # resumes, or does nothing when already done
    shutil.rmtree(work, ignore_errors=True)
    write_card(out)
    return manifest


def record_decontamination(plan: Plan, rejected: Path, manifest: dict[str, Any]) -> None:
    """The manifest's `decontamination` records of the plan's decontaminate step (rows per set, from rejected/)."""
    from capbuild.filters.decontaminate import Decontaminate

    steps = [s for s in plan.steps if isinstance(s, Decontaminate)]
    if not steps:
        return
    pairs: list[tuple[str | None, str | None]] = []
    for part in part_files(rejected):
        table = pq.read_table(part, columns=["filter", "image_ref"])
        pairs.extend(zip(table["filter"].to_pylist(), table["image_ref"].to_pylist(), strict=True))
    manifest["decontamination"] = [record for step in steps for record in step.records(pairs)]


def _open_manifest(out: Path, config: dict[str, Any], overwrite: bool) -> dict[str, Any]:
    """The manifest to continue, a fresh one, or a refusal when OUT holds another build."""
    out.mkdir(parents=True, exist_ok=True)
    existing = load_manifest(out)
    digest = fingerprint(config)
    if overwrite:
        clear_build(out)
    elif existing is not None and not _accepts(existing, digest) and not incomplete_build(out):
        raise BuildConflictError(
            f"{out} holds a build made with another configuration (fingerprint {existing.get('fingerprint')}, "
            f"this one {digest}). Re-run with --overwrite to replace it, or choose another --out."
        )
    elif existing is None and BuildLayout(out).holds_outputs():
        raise BuildConflictError(
            f"{out} holds build outputs but no manifest.json. Re-run with --overwrite to replace them."
        )
    elif existing is not None and _accepts(existing, digest):
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


def _accepts(manifest: dict[str, Any], digest: str) -> bool:
    """Whether a build with this fingerprint continues the manifest's build (`translate run` records the
    fingerprints of the commands that may continue it under `accepts`)."""
    return digest in (manifest.get("fingerprint"), *manifest.get("accepts", []))


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
