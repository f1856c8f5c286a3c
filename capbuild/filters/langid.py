"""The language filter: '--filter lang=it' or 'lang=it:0.5' keeps captions that lingua
(an offline detector that ships its models) finds written in Italian, with at least that confidence.

Detection is restricted to a candidate set (short captions are told apart better among few
languages): DEFAULT_CANDIDATES plus the wanted language, replaced, widened ('+ms,az') or set to
'all' with `--lang-candidates`. The detected language and its confidence go into the table
(`lang_detected`, `lang_score`) for kept and dropped rows alike.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from capbuild.errors import ConfigError
from capbuild.filters.base import CaptionFilter, FilterContext, FilterResult, register_filter
from capbuild.filters.options import require_extra
from capbuild.table import SCORE_FIELDS

DEFAULT_CANDIDATES = ("ar", "de", "en", "es", "fr", "id", "it", "ja", "nl", "pt", "ru", "tr", "zh")
UNDETECTED = "undetected"


def _language(code: str) -> Any:
    from lingua import IsoCode639_1, Language

    try:
        return Language.from_iso_code_639_1(IsoCode639_1.from_str(code.strip().lower()))
    except ValueError:
        known = ", ".join(sorted(lang.iso_code_639_1.name.lower() for lang in Language.all()))
        raise ConfigError(f"language {code!r} is not one lingua detects; ISO 639-1 codes it knows: {known}") from None


def candidate_codes(target: str, candidates: str | None) -> list[str] | None:
    """The ISO 639-1 codes to detect among (the target always included), or None for all of lingua's."""
    spec = (candidates or "").strip()
    if spec == "all":
        return None
    if spec.startswith("+"):
        codes = [*DEFAULT_CANDIDATES, *spec[1:].split(",")]
    elif spec:
        codes = spec.split(",")
    else:
        codes = list(DEFAULT_CANDIDATES)
    return sorted({c.strip().lower() for c in [*codes, *target.split(",")] if c.strip()})


@register_filter
class LanguageFilter(CaptionFilter):
    """Keeps a caption when its detected language is `target` with confidence >= `min_score`."""

    name = "lang"
    score_column = "lang_score"
    extra_score_columns = ("lang_detected",)

    def __init__(self, target: str, min_score: float = 0.0, candidates: str | None = None) -> None:
        require_extra("lingua", "lingua-language-detector")
        from lingua import Language, LanguageDetectorBuilder

        if not 0.0 <= min_score <= 1.0:
            raise ConfigError(f"lang={target}:{min_score}: the minimum confidence lies in [0, 1]")
        self.target, self.min_score = target.strip().lower(), min_score
        # With several targets (a `--lang it,ar` build and `lang` alone) a row must be in its own language.
        self.targets = [code.strip() for code in self.target.split(",") if code.strip()]
        codes = candidate_codes(self.target, candidates)
        languages = Language.all() if codes is None else [_language(c) for c in codes]
        for code in self.targets:
            _language(code)
        self.detector = LanguageDetectorBuilder.from_languages(*languages).build()

    @classmethod
    def from_spec(cls, arg: str | None, context: FilterContext) -> LanguageFilter:
        code, _, minimum = (arg or context.lang).partition(":")
        try:
            min_score = float(minimum) if minimum else 0.0
        except ValueError:
            raise ConfigError(
                f"--filter lang takes LANG or LANG:MIN_SCORE, e.g. lang=it:0.5 (got lang={arg})"
            ) from None
        return cls(code, min_score, context.options.get("lang_candidates"))

    def score(self, captions: list[str]) -> list[tuple[str | None, float]]:
        """(detected ISO 639-1 code, its confidence) per caption; (None, 0.0) when nothing is detected."""
        detected: list[tuple[str | None, float]] = []
        for values in self.detector.compute_language_confidence_values_in_parallel(captions):
            best = values[0] if values else None
            if best is None or best.value <= 0.0:
                detected.append((None, 0.0))
            else:
                detected.append((best.language.iso_code_639_1.name.lower(), best.value))
        return detected

    def passes(self, value: Any) -> bool:
        code, confidence = value
        return code == self.target and confidence >= self.min_score

    def apply(self, batch: pa.Table) -> FilterResult:
        values = self.score(batch["caption"].to_pylist())
        for name, column in (("lang_detected", [v[0] for v in values]), ("lang_score", [v[1] for v in values])):
            if name in batch.column_names:
                batch = batch.drop_columns([name])
            batch = batch.append_column(name, pa.array(column, type=SCORE_FIELDS[name]))
        shown = [f"{code}:{confidence:.3f}" if code else UNDETECTED for code, confidence in values]
        if len(self.targets) == 1:
            keep = [self.passes(v) for v in values]
        else:
            keep = [
                code == row_lang and confidence >= self.min_score
                for (code, confidence), row_lang in zip(values, batch["lang"].to_pylist(), strict=True)
            ]
        return FilterResult(batch, keep, shown)

    def describe(self) -> str:
        return f"lang={self.target}" + (f":{self.min_score:g}" if self.min_score else "")
