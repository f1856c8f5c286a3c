"""`capbuild translate run OUT`: re-translate an existing build's caption table (with another
model, other options or into another language), in place."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from capbuild.build import WORK_DIR
from capbuild.filters.base import FilterContext
from capbuild.filters.chain import FilterChain
from capbuild.manifest import fingerprint, load_manifest, save_manifest
from capbuild.table import SCORE_FIELDS, caption_schema, conform, iter_batches, read_parts, rejected_schema, write_part
from capbuild.text_stage import TEXT_BATCH_ROWS
from capbuild.translate.filters import DegenerateTranslationFilter, TranslateFilter, translation_filters

TRANSLATE_FILTERS = (TranslateFilter.name, DegenerateTranslationFilter.name)


def retranslate_build(out: Path, options: dict[str, Any]) -> dict[str, Any]:
    """Translate the source captions of build OUT again; `options` are the build's --mt-* filter
    options plus `target_lang`. Rows that translate or mt_degenerate rejected are retried. The shards
    no longer match the table, so they are removed and the images stage is marked not done."""
    manifest = load_manifest(out)
    if manifest is None:
        raise ValueError(f"{out} holds no manifest.json: is it a capbuild build folder?")
    if not manifest["stages"]["text"].get("done"):
        raise ValueError(f"{out}: the caption table is not finished; re-run the build command first")
    table = read_parts(out / "captions")
    rejected = read_parts(out / "rejected") if (out / "rejected").is_dir() else None
    sources = _restore_sources(table, rejected)
    source_langs = set(sources["lang"].to_pylist())
    options = {**options, "translate": True}
    context = FilterContext(lang=next(iter(source_langs)) if len(source_langs) == 1 else "mul", options=options)
    chain = FilterChain(translation_filters(context))
    scores = [c for c in SCORE_FIELDS if c in table.column_names or c in chain.score_columns]
    chain.schema, chain.rejected_schema = caption_schema(scores), rejected_schema(scores)
    work = out / WORK_DIR / "retranslate"
    shutil.rmtree(work, ignore_errors=True)
    kept_rows = 0
    kept_rejects = _other_rejects(rejected, chain.rejected_schema)
    if len(kept_rejects):
        write_part(kept_rejects, work / "rejected", 0)
    for part, batch in enumerate(iter_batches(sources, TEXT_BATCH_ROWS)):
        kept, dropped = chain.apply(batch)
        write_part(kept, work / "captions", part)
        kept_rows += len(kept)
        if len(dropped):
            write_part(dropped, work / "rejected", part + 1)
    for name in ("captions", "rejected"):
        shutil.rmtree(out / name, ignore_errors=True)
        if (work / name).exists():
            (work / name).replace(out / name)
    shutil.rmtree(out / WORK_DIR, ignore_errors=True)
    shutil.rmtree(out / "shards", ignore_errors=True)
    _update_manifest(out, manifest, chain, options, kept_rows, len(kept_rejects))
    return manifest


def _restore_sources(table: pa.Table, rejected: pa.Table | None) -> pa.Table:
    """The caption table (plus rows mt_degenerate rejected) with each row's source text and language
    back in caption / captions / lang."""
    if rejected is not None and "filter" in rejected.column_names:
        retry = rejected.filter(pc.is_in(rejected["filter"], pa.array(TRANSLATE_FILTERS)))
        if len(retry):
            table = pa.concat_tables([table, retry.drop_columns(["filter", "filter_value"])], promote_options="default")
    rows = table.to_pylist()
    for row in rows:
        if row.get("lang_orig") and row["lang_orig"] != row["lang"]:
            row["caption"], row["lang"] = row["caption_orig"], row["lang_orig"]
            if row.get("captions_orig"):
                row["captions"] = row["captions_orig"]
            elif row["captions"]:
                # Built before captions_orig was kept: only the main caption's source is known.
                row["captions"] = [row["caption_orig"]]
    scores = [c for c in SCORE_FIELDS if c in table.column_names]
    return pa.Table.from_pylist(rows, schema=caption_schema(scores))


def _other_rejects(rejected: pa.Table | None, schema: pa.Schema) -> pa.Table:
    if rejected is None or "filter" not in rejected.column_names:
        return schema.empty_table()
    return conform(rejected.filter(pc.invert(pc.is_in(rejected["filter"], pa.array(TRANSLATE_FILTERS)))), schema)


def _update_manifest(
    out: Path, manifest: dict[str, Any], chain: FilterChain, options: dict[str, Any], kept: int, old_rejects: int
) -> None:
    config = manifest["config"]
    config["filters"] = [f for f in config["filters"] if not f.startswith(TRANSLATE_FILTERS)] + [
        f.describe() for f in chain.filters
    ]
    config["filter_options"] = {**config.get("filter_options", {}), **_jsonable(options)}
    manifest["fingerprint"] = fingerprint(config)
    text = manifest["counts"].setdefault("text", {})
    filters = {k: v for k, v in text.get("filters", {}).items() if not k.startswith(TRANSLATE_FILTERS)}
    text["filters"] = {**filters, **chain.counts}
    text["reports"] = {f.describe(): r for f in chain.filters if (r := f.report())}
    text["captions"] = kept
    text["rejected"] = old_rejects + sum(counts["dropped"] for counts in chain.counts.values())
    manifest["stages"]["images"] = {"done": False}
    manifest["counts"].pop("images", None)
    save_manifest(out, manifest)


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
