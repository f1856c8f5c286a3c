"""`capbuild translate run OUT`: translate an existing build's caption table again (another model,
other options or another language), in place, by rewriting the translate step of the build's plan.

The rows the translate step saw (those in captions/ and those a later step rejected) get their
source text back and run through the new translate step and every step after it. The manifest's plan
becomes the new one; the fingerprint of the command that made the build stays accepted, so running
that build command again continues the build (its images stage) from the new table.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from capbuild.errors import ConfigError
from capbuild.filters.chain import FilterChain
from capbuild.layout import WORK as WORK_DIR
from capbuild.manifest import fingerprint, require_manifest, save_manifest
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.plan import Plan
from capbuild.stages.text.records import StepRecord, is_translation_step, plan_steps, step_records
from capbuild.stages.text.stage import TEXT_BATCH_ROWS
from capbuild.table import conform, iter_batches, read_parts, write_part
from capbuild.translate.steps import MtDegenerate, Translate, translation_steps

ACCEPTS = "accepts"


def recorded_options(manifest: dict[str, Any]) -> dict[str, Any]:
    """The TextOptions fields a build translated with: its translate step's options and MT check threshold
    (from the plan) and the operational ones it ran with (devices, batch tokens, cache)."""
    names = {f.name for f in dataclasses.fields(TextOptions)}
    recorded: dict[str, Any] = {}
    for step in plan_steps(manifest):
        if step["name"] == Translate.name:
            recorded.update({k: v for k, v in step.get("options", {}).items() if k in names})
        elif step["name"] == MtDegenerate.name and "max_foreign_script" in step.get("options", {}):
            recorded["mt_max_foreign_script"] = step["options"]["max_foreign_script"]
    operational = manifest.get("operational", {}).get("steps", {}).get(Translate.name, {})
    recorded.update({k: v for k, v in operational.items() if k in names})
    return recorded


def retranslate_build(out: Path, options: TextOptions, lang: str | None = None) -> dict[str, Any]:
    """Translate the source captions of build OUT again with the --mt-* fields of `options`, into
    `lang` (default: the language the build translated into). The shards no longer match the table,
    so they are removed and the images stage is marked not done."""
    manifest = require_manifest(out)
    if not manifest["stages"]["text"].get("done"):
        raise ConfigError(f"{out}: the caption table is not finished; re-run the build command first")
    old = Plan.from_config(plan_steps(manifest))
    at = next((i for i, s in enumerate(old.steps) if isinstance(s, Translate)), None)
    target = lang or (old.steps[at].target_lang if at is not None else None)  # type: ignore[attr-defined]
    if not target:
        raise ConfigError(f"{out} was not translated before: give the target language with --lang")
    translation = translation_steps(target, options)
    names = [s.name for s in old.steps if is_translation_step(s.name)]
    plan = old.replace_steps(names, translation)
    start = next(i for i, s in enumerate(plan.steps) if isinstance(s, Translate))
    later = {s.name for s in plan.steps[start:]}
    earlier = {s.name for s in plan.steps[:start]}

    table = read_parts(out / "captions")
    rejected = read_parts(out / "rejected") if (out / "rejected").is_dir() else None
    retry, keep_rejected = _split_rejected(rejected, later, earlier)
    sources = _restore_sources(pa.concat_tables([conform(t, plan.schema) for t in (table, retry)]), plan)
    chain = FilterChain([s.build() for s in plan.steps[start:]], plan.scores, plan.labels[start:])
    work = out / WORK_DIR / "retranslate"
    shutil.rmtree(work, ignore_errors=True)
    kept_by_source: Counter[str] = Counter()
    rejected_by_source: Counter[str] = Counter(keep_rejected["source"].to_pylist())
    if len(keep_rejected):
        write_part(conform(keep_rejected, plan.rejected_schema), work / "rejected", 0)
    batches = list(iter_batches(sources, TEXT_BATCH_ROWS)) or [sources]
    for part, batch in enumerate(batches):
        kept, dropped = chain.apply(batch)
        if len(kept) or part == 0:
            write_part(kept, work / "captions", part)
        if len(dropped):
            write_part(dropped, work / "rejected", part + 1)
        kept_by_source.update(kept["source"].to_pylist())
        rejected_by_source.update(dropped["source"].to_pylist())
    for name in ("captions", "rejected"):
        shutil.rmtree(out / name, ignore_errors=True)
        if (work / name).exists():
            (work / name).replace(out / name)
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    shutil.rmtree(out / "shards", ignore_errors=True)
    _update_manifest(out, manifest, plan, start, chain, kept_by_source, rejected_by_source)
    return manifest


def translated_into(manifest: dict[str, Any]) -> str | None:
    """The language a build translated into (None when it did not translate)."""
    return next((s["options"].get("target_lang") for s in plan_steps(manifest) if s["name"] == Translate.name), None)


def _split_rejected(rejected: pa.Table | None, later: set[str], earlier: set[str]) -> tuple[pa.Table, pa.Table]:
    """(rows a step at or after translate rejected: to translate again, the other rejected rows)."""
    if rejected is None or not len(rejected):
        empty = pa.table({"source": pa.array([], pa.string())})
        return empty, empty
    names = rejected["filter"].to_pylist()
    translated = pc.not_equal(rejected["lang"], rejected["lang_orig"]).to_pylist()
    retry = [
        (name in later or is_translation_step(name)) and (name not in earlier or bool(moved))
        for name, moved in zip(names, translated, strict=True)
    ]
    mask = pa.array(retry, pa.bool_())
    return rejected.filter(mask).drop_columns(["filter", "filter_value"]), rejected.filter(pc.invert(mask))


def _restore_sources(table: pa.Table, plan: Plan) -> pa.Table:
    """The rows with each translated row's source text and language back in caption / captions / lang."""
    rows = table.to_pylist()
    for row in rows:
        if row.get("lang_orig") and row["lang_orig"] != row["lang"]:
            row["caption"], row["lang"] = row["caption_orig"], row["lang_orig"]
            row["captions"] = row.get("captions_orig") or [row["caption_orig"]]
    return pa.Table.from_pylist(rows, schema=plan.schema)


def _update_manifest(
    out: Path,
    manifest: dict[str, Any],
    plan: Plan,
    start: int,
    chain: FilterChain,
    kept: Counter[str],
    rejected: Counter[str],
) -> None:
    config = manifest["config"]
    accepts = manifest.setdefault(ACCEPTS, [])
    if manifest["fingerprint"] not in accepts:
        accepts.append(manifest["fingerprint"])
    config["plan"] = plan.config()
    manifest["fingerprint"] = fingerprint(config)
    reports = {label: r for f, label in zip(chain.filters, chain.labels, strict=True) if (r := f.report())}
    old = {record.spec: record for record in step_records(manifest)}
    records = []
    for index, (step, label) in enumerate(zip(plan.steps, plan.labels, strict=True)):
        if index >= start:
            records.append(StepRecord.of(step, label, chain.counts[label], reports.get(label, {})))
        else:
            records.append(old.get(label) or StepRecord.of(step, label, {}, {}))
    text = manifest["counts"].setdefault("text", {})
    text["steps"] = [r.to_json() for r in records]
    text["captions"] = sum(kept.values())
    text["rejected"] = sum(rejected.values())
    sources = sorted(set(kept) | set(rejected))
    text["per_source"] = {s: {"captions": kept[s], "rejected": rejected[s]} for s in sources}
    manifest["stages"]["images"] = {"done": False}
    manifest["counts"].pop("images", None)
    save_manifest(out, manifest)
