"""`run_image_filters`: the image-filter stage of a build, after its image stage, or alone on a
finished build. Steps, each resumable after a kill:

1. the embedding pass writes embeddings/NNNNN.parquet (reused when the same model already did);
2. the decisions over every sample, in order, saved once to the work folder;
3. each shard split into kept and rejected samples, then the caption table, sizes.json and manifest.

A later run with other filters applies to what earlier runs kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from capbuild.atomic import atomic_path, write_text_atomic
from capbuild.errors import ConfigError, InputError
from capbuild.imagefilters.options import ImageFilterOptions
from capbuild.imagefilters.scorer import Scorer, open_scorer
from capbuild.imagefilters.specs import ClipScore, ClipTop, DecontaminateImages, parse_image_filters
from capbuild.layout import BuildLayout
from capbuild.manifest import load_manifest, save_manifest
from capbuild.stages.text.executors.base import ExecutorOptions

WORK_NAME = "imagefilters"  # under the build's work folder
STAGE = "image_filters"


def run_image_filters(
    out: Path,
    specs: list[str],
    score_model: str | None = None,
    options: ImageFilterOptions | None = None,
    executor: ExecutorOptions | None = None,
) -> dict[str, Any]:
    """Filter a finished build's shards with the image filters `specs`; returns the manifest. With a Ray
    executor the embedding pass runs on Ray actors (one per GPU), else in this process."""
    out, options = Path(out), options or ImageFilterOptions()
    filters = parse_image_filters(specs)
    if not filters:
        raise ConfigError("give at least one --image-filter")
    manifest = load_manifest(out)
    if manifest is None or not manifest.get("stages", {}).get("images", {}).get("done"):
        raise InputError(f"{out} is not a build whose image stage has finished (no manifest.json or no shards)")
    needs_model = any(f.needs_model for f in filters)
    if needs_model and not score_model:
        raise ConfigError(f"{', '.join(f.describe() for f in filters if f.needs_model)} need(s) --score-model")
    with open_scorer(score_model if needs_model else None, options.device, executor, options.workers) as scorer:
        config = {
            "filters": [f.describe() for f in filters],
            "score_model": {"name": scorer.name, "fingerprint": scorer.fingerprint} if scorer else None,
            "embedding_dtype": options.embedding_dtype,
        }
        paths = BuildLayout(out)
        work = paths.work / WORK_NAME
        run = _open_run(out, work, manifest, config)
        if run is None:
            return manifest
        started = time.monotonic()
        shards, splits = shard_order(out, manifest)
        decisions_path = work / "decisions.parquet"
        if not decisions_path.exists():
            _decide(out, work, shards, splits, filters, scorer, options, decisions_path)
    from capbuild.imagefilters.apply import apply_shard, update_captions

    decisions = pq.read_table(decisions_path)
    report = json.loads(decisions.schema.metadata[b"report"])
    sizes: dict[str, int] = {}
    for shard in shards:
        rows = decisions.filter(pc.equal(decisions["shard"], shard.name)).to_pylist()
        if not (work / "applied" / shard.name).exists():
            apply_shard(shard, paths.rejected_images, work, {row["key"]: row for row in rows})
        sizes[shard.name] = sum(1 for row in rows if not row["filter"])
    update_captions(out, work, decisions, run)
    _write_json(paths.sizes, {**_sizes(paths.sizes), **sizes})
    record = {"run": run, **config, **report, "seconds": round(time.monotonic() - started, 2)}
    manifest.setdefault("counts", {}).setdefault(STAGE, [])
    manifest["counts"][STAGE] = [r for r in manifest["counts"][STAGE] if r.get("run") != run] + [record]
    manifest["stages"][STAGE] = {"done": True, "config": config}
    save_manifest(out, manifest)
    shutil.rmtree(work)
    if not any(work.parent.iterdir()):
        work.parent.rmdir()
    return manifest


def _decide(out, work, shards, splits, filters, scorer: Scorer | None, options, decisions_path: Path) -> None:
    from capbuild.imagefilters.decide import decide, decisions_table, load_samples
    from capbuild.imagefilters.embed import PassOptions, embed_shards, index_keys, index_shards

    needs_orig = any(isinstance(f, (ClipScore, ClipTop)) and f.text == "caption_orig" for f in filters)
    scored = None
    if scorer:
        scored = "caption_orig" if needs_orig else "caption"
    pass_options = PassOptions(options.batch_size, options.workers, options.embedding_dtype)
    embeddings = BuildLayout(out).embeddings
    indexes = index_shards(shards)
    if scorer:
        embed_report = scorer.embed(indexes, embeddings, needs_orig, pass_options)
    else:
        embed_report = embed_shards(indexes, embeddings, [], needs_orig, pass_options)
    eval_hashes = {
        f.eval_out: eval_build_hashes(Path(f.eval_out), work, pass_options)
        for f in filters
        if isinstance(f, DecontaminateImages)
    }
    keys = [index_keys(indexes[shard]) for shard in shards]
    samples = load_samples(shards, splits, keys, embeddings, scored)
    decisions = decide(samples, filters, embeddings, eval_hashes)
    report = {**decisions.report, "embedding_pass": embed_report}
    table = decisions_table(samples, decisions)
    table = table.replace_schema_metadata({b"report": json.dumps(report).encode()})
    with atomic_path(decisions_path) as tmp:
        pq.write_table(table, tmp)


def eval_build_hashes(eval_out: Path, work: Path, options: Any) -> tuple[list[str], list[str]]:
    """(keys, pHashes) of every decodable image of an evaluation build: from its embeddings/ when
    its own image filters saved them, else hashed here (into the work folder, never into that build)."""
    from capbuild.imagefilters.embed import (
        embed_shards,
        embedding_path,
        index_keys,
        index_shards,
        read_embeddings,
        reusable,
    )

    shards = sorted(BuildLayout(eval_out).shards.glob("*.tar"))
    if not shards:
        raise InputError(f"decontaminate_images: {eval_out}/shards holds no .tar shard")
    folder = BuildLayout(eval_out).embeddings
    indexes = index_shards(shards)
    if not all(reusable(embedding_path(folder, s), index_keys(i), None, False) for s, i in indexes.items()):
        folder = work / "eval" / hashlib.sha256(str(eval_out.resolve()).encode()).hexdigest()[:12]
        embed_shards(indexes, folder, [], False, options, label=f"image filters: hashing {eval_out.name}")
    pairs = []
    for shard, index in indexes.items():
        table = read_embeddings(embedding_path(folder, shard), index_keys(index), ["phash"])
        pairs += [(k, h) for k, h in zip(table["key"].to_pylist(), table["phash"].to_pylist(), strict=True) if h]
    return [k for k, _ in pairs], [h for _, h in pairs]


def _open_run(out: Path, work: Path, manifest: dict[str, Any], config: dict[str, Any]) -> int | None:
    """The run number to carry out (resuming an unfinished one), or None when this exact run is done."""
    state_path = work / "state.json"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if state["config"] != config:
            raise ConfigError(
                f"{out} holds an unfinished image-filter run with other options "
                f"({', '.join(state['config']['filters'])}, model {state['config']['score_model']}); "
                "re-run it with those to finish it first"
            )
        return int(state["run"])
    stage = manifest["stages"].get(STAGE, {})
    if stage.get("done") and stage.get("config") == config:
        return None
    run = len(manifest.get("counts", {}).get(STAGE, [])) + 1
    work.mkdir(parents=True, exist_ok=True)
    _write_json(state_path, {"config": config, "run": run})
    return run


def shard_order(out: Path, manifest: dict[str, Any]) -> tuple[list[Path], list[str]]:
    """The build's shards in split order (as the image stage wrote them) and each one's split."""
    split_map = manifest.get("counts", {}).get("images", {}).get("splits") or {}
    names = [(name, split) for split, tars in split_map.items() for name in tars]
    if not names:
        names = [(p.name, "train") for p in sorted(BuildLayout(out).shards.glob("*.tar"))]
    shards = [BuildLayout(out).shards / name for name, _ in names]
    return shards, [split for _, split in names]


def _sizes(path: Path) -> dict[str, int]:
    return json.loads(path.read_text()) if path.exists() else {}


def _write_json(path: Path, value: Any) -> None:
    write_text_atomic(path, json.dumps(value, indent=2, sort_keys=True) + "\n")
