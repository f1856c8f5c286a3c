"""Translation as two steps of the filter chain, after the user's filters (which see the source
text and so save compute): `translate` rewrites every row, `mt_degenerate` drops bad output."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import pyarrow as pa

from capbuild.errors import ConfigError
from capbuild.filters.base import Filter, FilterContext, FilterResult
from capbuild.translate.degenerate import degenerate_reason
from capbuild.translate.engine import DecodeOptions, RuntimeOptions
from capbuild.translate.model import ModelInfo, read_model_info
from capbuild.translate.translator import Translator


@lru_cache(maxsize=8)
def _model_info(folder: str) -> ModelInfo:
    return read_model_info(Path(folder))


class TranslateFilter(Filter):
    """Translates `caption` and every entry of `captions` into the target language (through the
    cache); the source text goes to `caption_orig` / `captions_orig` and its language to `lang_orig`.
    Rows already in the target language pass unchanged. Keeps every row."""

    name = "translate"
    score_column = "captions_orig"

    def __init__(self, model_dir: Path, target_lang: str, translator_options: dict[str, Any]) -> None:
        self.model_dir = Path(model_dir)
        self.target_lang = target_lang
        self.translator_options = translator_options
        self.info = _model_info(str(self.model_dir.resolve()))
        self.rows_translated = 0

    @cached_property
    def translator(self) -> Translator:
        return Translator(self.model_dir, **self.translator_options)

    def apply(self, batch: pa.Table) -> FilterResult:
        captions = batch["caption"].to_pylist()
        lists = [list(c or []) for c in batch["captions"].to_pylist()]
        langs = batch["lang"].to_pylist()
        caption_orig = batch["caption_orig"].to_pylist()
        lang_orig = batch["lang_orig"].to_pylist()
        captions_orig = [list(c) for c in lists]
        by_lang: dict[str, list[int]] = defaultdict(list)
        for index, lang in enumerate(langs):
            if lang != self.target_lang:
                by_lang[lang].append(index)
        for src_lang, rows in by_lang.items():
            texts = [t for i in rows for t in [captions[i], *lists[i]]]
            translated = iter(self.translator.translate(texts, src_lang, self.target_lang))
            for i in rows:
                caption_orig[i], lang_orig[i] = captions[i], src_lang
                captions[i] = next(translated)
                lists[i] = [next(translated) for _ in lists[i]]
                langs[i] = self.target_lang
            self.rows_translated += len(rows)
        columns = {
            "caption": pa.array(captions, pa.string()),
            "captions": pa.array(lists, pa.list_(pa.string())),
            "lang": pa.array(langs, pa.string()),
            "caption_orig": pa.array(caption_orig, pa.string()),
            "lang_orig": pa.array(lang_orig, pa.string()),
            "captions_orig": pa.array(captions_orig, pa.list_(pa.string())),
        }
        for name, column in columns.items():
            if name in batch.column_names:
                batch = batch.set_column(batch.schema.get_field_index(name), name, column)
            else:
                batch = batch.append_column(name, column)
        return FilterResult(batch, [True] * len(batch), [""] * len(batch))

    def describe(self) -> str:
        return f"translate={self.target_lang} model={self.info.name}@{self.info.fingerprint}"

    def report(self) -> dict[str, Any]:
        if "translator" not in self.__dict__:
            return {"model": self.info.name, "model_fingerprint": self.info.fingerprint, "rows_translated": 0}
        return {**self.translator.report(), "rows_translated": self.rows_translated}


class DegenerateTranslationFilter(Filter):
    """Drops translated rows whose caption is degenerate (empty, a repeated-token loop, an absurd
    length ratio to its source); degenerate entries of `captions` are removed and counted."""

    name = "mt_degenerate"

    def __init__(self) -> None:
        self.removed: Counter[str] = Counter()

    def apply(self, batch: pa.Table) -> FilterResult:
        translated = [a != b for a, b in zip(batch["lang"].to_pylist(), batch["lang_orig"].to_pylist(), strict=True)]
        values = [
            degenerate_reason(src or "", out or "") if moved else ""
            for moved, src, out in zip(
                translated, batch["caption_orig"].to_pylist(), batch["caption"].to_pylist(), strict=True
            )
        ]
        if "captions_orig" in batch.column_names:
            lists = []
            for moved, sources, outputs in zip(
                translated, batch["captions_orig"].to_pylist(), batch["captions"].to_pylist(), strict=True
            ):
                pairs = list(zip(sources or [], outputs or [], strict=False)) if moved else []
                kept = [out for src, out in pairs if not degenerate_reason(src, out)]
                self.removed["captions_entries"] += len(pairs) - len(kept)
                lists.append(kept if moved else outputs)
            index = batch.schema.get_field_index("captions")
            batch = batch.set_column(index, "captions", pa.array(lists, pa.list_(pa.string())))
        return FilterResult(batch, [not v for v in values], values)

    def report(self) -> dict[str, Any]:
        return {"degenerate_entries_removed_from_captions": self.removed["captions_entries"]}


def translator_options(options: dict[str, Any]) -> dict[str, Any]:
    """Translator keyword arguments from the build's filter options (the CLI's --mt-* options)."""
    return {
        "cache_dir": options.get("mt_cache"),
        "decode": DecodeOptions(
            beam_size=options.get("beam_size") or 1,
            repetition_penalty=options.get("mt_repetition_penalty") or 1.0,
            no_repeat_ngram_size=options.get("mt_no_repeat_ngram") or 0,
        ),
        "runtime": RuntimeOptions(
            devices=options.get("mt_devices") or "auto",
            compute_type=options.get("mt_compute_type"),
            batch_tokens=options.get("mt_batch_tokens"),
        ),
        "progress": options.get("mt_progress", True),
    }


def translation_filters(context: FilterContext) -> list[Filter]:
    """[translate, mt_degenerate] for a build that asked for translation (else [])."""
    options = context.options
    if not options.get("translate"):
        return []
    if not options.get("mt_model"):
        raise ConfigError("--translate needs --mt-model CT2_DIR (make one with `capbuild translate convert`)")
    target = options.get("target_lang")
    if not target:
        raise ConfigError("translation needs a target language (--lang)")
    if target == context.lang:
        raise ConfigError(
            f"--translate: the captions are already in {target}; give their language with --src-lang "
            "(default en) and the language to translate into with --lang"
        )
    translate = TranslateFilter(Path(options["mt_model"]), target, translator_options(options))
    return [translate, DegenerateTranslationFilter()]
