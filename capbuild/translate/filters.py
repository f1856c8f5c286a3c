"""The runners of the translation steps (capbuild.translate.steps): `translate` rewrites every row it
can (a caption too long for the model, or one the model fails on, is rejected with its reason),
`mt_degenerate` drops bad output (the MT output checks)."""

from __future__ import annotations

from collections import Counter, defaultdict
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow as pa

from capbuild.errors import StepError
from capbuild.filters.base import FilterResult, Runner
from capbuild.translate.checks import MAX_FOREIGN_SCRIPT, REASONS, judge, verdict
from capbuild.translate.model import read_model_info
from capbuild.translate.translator import ERROR, TOO_LONG, Translator

MAX_ERRORS = 0.01  # share of the captions a translate step may fail on (mt_error) before it stops the build
SHOWN_FAILURES = 3  # failures named in the error that stops the build


class TranslateFilter(Runner):
    """Translates `caption` and every entry of `captions` into the target language (through the
    cache); the source text goes to `caption_orig` / `captions_orig` and its language to `lang_orig`.
    Rows already in the target language pass unchanged. A row whose caption the model cannot
    translate is dropped as 'mt_too_long: ...' or 'mt_error: ...' (an entry of `captions` is left
    empty, for mt_degenerate to remove). When more than `max_errors` of the captions this step has
    seen fail with mt_error, it raises StepError (the cache keeps what was translated)."""

    name = "translate"

    def __init__(
        self, model_dir: Path, target_lang: str, translator_options: dict[str, Any], max_errors: float = MAX_ERRORS
    ) -> None:
        self.model_dir = Path(model_dir)
        self.target_lang = target_lang
        self.translator_options = translator_options
        self.max_errors = max_errors
        self.info = read_model_info(self.model_dir)
        self.rows_translated = 0
        self.rejected: Counter[str] = Counter()
        self.entries_failed = 0
        self.texts_seen = 0
        self.failures: list[tuple[str, str]] = []  # (source text, error) of every mt_error

    @cached_property
    def translator(self) -> Translator:
        return Translator(self.model_dir, **self.translator_options)

    def apply(self, batch: pa.Table) -> FilterResult:
        captions = batch["caption"].to_pylist()
        lists = [list(c or []) for c in batch["captions"].to_pylist()]
        langs = batch["lang"].to_pylist()
        caption_orig = batch["caption_orig"].to_pylist()
        lang_orig = batch["lang_orig"].to_pylist()
        captions_orig = (
            batch["captions_orig"].to_pylist() if "captions_orig" in batch.column_names else [None] * len(batch)
        )
        keep, values = [True] * len(batch), [""] * len(batch)
        failed = 0  # rows the model failed on (mt_error), for the step's error count
        by_lang: dict[str, list[int]] = defaultdict(list)
        for index, lang in enumerate(langs):
            if lang != self.target_lang:
                by_lang[lang].append(index)
        for src_lang, rows in by_lang.items():
            texts = [t for i in rows for t in [captions[i], *lists[i]]]
            outcomes = self.translator.translate_outcomes(texts, src_lang, self.target_lang)
            self._count_failures(texts, outcomes)
            translated = iter(outcomes)
            for i in rows:
                caption_orig[i], captions_orig[i], lang_orig[i] = captions[i], list(lists[i]), src_lang
                main = next(translated)
                entries = [next(translated) for _ in lists[i]]
                captions[i], lists[i], langs[i] = main.text, [e.text for e in entries], self.target_lang
                self.entries_failed += sum(not e.ok for e in entries)
                if not main.ok:
                    keep[i], values[i] = False, verdict(main.reason, main.detail)
                    self.rejected[main.reason] += 1
                    failed += main.reason == ERROR
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
        self._check_error_budget()
        return FilterResult(batch, keep, values, failed)

    def _count_failures(self, texts: list[str], outcomes: list[Any]) -> None:
        """Distinct captions of the batch seen and failed (a row's caption is often in its `captions` too)."""
        unique = dict(zip(texts, outcomes, strict=True))
        self.texts_seen += len(unique)
        self.failures += [(text, o.detail) for text, o in unique.items() if o.reason == ERROR]

    def _check_error_budget(self) -> None:
        """Stop the build when the model fails on too many captions: something is wrong with it (or
        the device), not with a caption. The translations made so far are in the cache already."""
        if len(self.failures) <= self.max_errors * self.texts_seen:
            return
        shown = "; ".join(f"{text[:80]!r}: {error}" for text, error in self.failures[:SHOWN_FAILURES])
        raise StepError(
            f"translation failed on {len(self.failures)} of {self.texts_seen} captions "
            f"({len(self.failures) / self.texts_seen:.1%}), more than --mt-max-errors {self.max_errors:g} allows; "
            f"first failures: {shown}. The captions translated so far are cached: fix the cause and re-run "
            "the same command to continue, or raise --mt-max-errors to reject such captions as mt_error"
        )

    def describe(self) -> str:
        return f"translate={self.target_lang} model={self.info.name}@{self.info.fingerprint}"

    def report(self) -> dict[str, Any]:
        """Model, cache and counts; rows rejected per reason (mt_too_long, mt_error) and entries of
        `captions` the model could not translate."""
        rejected = {reason: self.rejected[reason] for reason in (TOO_LONG, ERROR)}
        if "translator" not in self.__dict__:
            base = {"model": self.info.name, "model_fingerprint": self.info.fingerprint}
        else:
            base = self.translator.report()
        return {**base, "rows_translated": self.rows_translated, **rejected, "entries_failed": self.entries_failed}


class DegenerateTranslationFilter(Runner):
    """Drops translated rows whose caption fails a check of capbuild.translate.checks.judge (empty,
    a repeated-token loop, an absurd length ratio, the source copied, the wrong script for the
    target, quotes or brackets left open), with 'reason: detail' as the value; failing entries of
    `captions` are removed and counted."""

    name = "mt_degenerate"

    def __init__(self, max_foreign_script: float = MAX_FOREIGN_SCRIPT) -> None:
        self.max_foreign_script = max_foreign_script
        self.rejected: Counter[str] = Counter()
        self.entries_removed = 0

    def apply(self, batch: pa.Table) -> FilterResult:
        langs = batch["lang"].to_pylist()
        translated = [a != b for a, b in zip(langs, batch["lang_orig"].to_pylist(), strict=True)]
        values = []
        for moved, lang, src, out in zip(
            translated, langs, batch["caption_orig"].to_pylist(), batch["caption"].to_pylist(), strict=True
        ):
            reason, detail = judge(src or "", out or "", lang, self.max_foreign_script) if moved else ("", "")
            if reason:
                self.rejected[reason] += 1
            values.append(verdict(reason, detail))
        if "captions_orig" in batch.column_names:
            lists = []
            for moved, lang, sources, outputs in zip(
                translated, langs, batch["captions_orig"].to_pylist(), batch["captions"].to_pylist(), strict=True
            ):
                pairs = list(zip(sources or [], outputs or [], strict=False)) if moved else []
                kept = [out for src, out in pairs if not judge(src, out, lang, self.max_foreign_script)[0]]
                self.entries_removed += len(pairs) - len(kept)
                lists.append(kept if moved else outputs)
            index = batch.schema.get_field_index("captions")
            batch = batch.set_column(index, "captions", pa.array(lists, pa.list_(pa.string())))
        return FilterResult(batch, [not v for v in values], values)

    def describe(self) -> str:
        if self.max_foreign_script == MAX_FOREIGN_SCRIPT:
            return self.name
        return f"{self.name} max_foreign_script={self.max_foreign_script:g}"

    def report(self) -> dict[str, Any]:
        """Rows dropped per reason (every reason listed, zeros included) and entries removed from `captions`."""
        return {
            **{reason: self.rejected[reason] for reason in REASONS},
            "degenerate_entries_removed_from_captions": self.entries_removed,
        }
