"""The runners of the translation steps (capbuild.translate.steps): `translate` rewrites every row,
`mt_degenerate` drops bad output."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa

from capbuild.filters.base import FilterResult, Runner
from capbuild.translate.degenerate import degenerate_reason
from capbuild.translate.model import read_model_info
from capbuild.translate.translator import Translator


class TranslateFilter(Runner):
    """Translates `caption` and every entry of `captions` into the target language (through the
    cache); the source text goes to `caption_orig` / `captions_orig` and its language to `lang_orig`.
    Rows already in the target language pass unchanged. Keeps every row."""

    name = "translate"

    def __init__(self, model_dir: Path, target_lang: str, translator_options: dict[str, Any]) -> None:
        self.model_dir = Path(model_dir)
        self.target_lang = target_lang
        self.translator_options = translator_options
        self.info = read_model_info(self.model_dir)
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


class DegenerateTranslationFilter(Runner):
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
