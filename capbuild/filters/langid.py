"""The language filter: '--filter lang=it' or 'lang=it:0.5' keeps captions that lingua
(an offline detector that ships its models) finds written in Italian, with at least that confidence.

Detection is restricted to a candidate set (short captions are told apart better among few
languages): DEFAULT_CANDIDATES plus the wanted language, replaced, widened ('+ms,az') or set to
'all' with `--lang-candidates`. The detected language and its confidence go into the table
(`lang_detected`, `lang_score`) for kept and dropped rows alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from capbuild.errors import ConfigError
from capbuild.filters.base import CaptionFilter, FilterResult, score_each
from capbuild.filters.options import require_extra
from capbuild.options import opt
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.steps import Filter, register_step

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


class LanguageFilter(CaptionFilter):
    """Keeps a caption when its detected language is `target` with confidence >= `min_score`; a
    caption the detector fails on is dropped with its error."""

    name = "lang"
    score_column = "lang_score"
    scores: ClassVar[dict[str, pa.DataType]] = {"lang_detected": pa.string(), "lang_score": pa.float32()}

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
        scored, errors = score_each(self.score, batch["caption"].to_pylist())
        values = [v or (None, None) for v in scored]
        for name, column in (("lang_detected", [v[0] for v in values]), ("lang_score", [v[1] for v in values])):
            if name in batch.column_names:
                batch = batch.drop_columns([name])
            batch = batch.append_column(name, pa.array(column, type=self.scores[name]))
        shown = [
            errors.get(i) or (f"{code}:{confidence:.3f}" if code else UNDETECTED)
            for i, (code, confidence) in enumerate(values)
        ]
        if len(self.targets) == 1:
            keep = [i not in errors and self.passes(v) for i, v in enumerate(values)]
        else:
            keep = [
                i not in errors and code == row_lang and confidence >= self.min_score
                for i, ((code, confidence), row_lang) in enumerate(zip(values, batch["lang"].to_pylist(), strict=True))
            ]
        return FilterResult(batch, keep, shown, len(errors))

    def describe(self) -> str:
        return f"lang={self.target}" + (f":{self.min_score:g}" if self.min_score else "")


@register_step
@dataclass(frozen=True)
class Lang(Filter):
    """'lang', 'lang=it' or 'lang=it:0.5': keeps captions detected in that language (default: the build's)."""

    name: ClassVar[str] = "lang"
    scores: ClassVar[dict[str, pa.DataType]] = LanguageFilter.scores
    target: str = field(default="en", metadata=opt("Language(s) a caption must be detected in."))
    min_score: float = field(default=0.0, metadata=opt("Smallest detection confidence kept."))
    candidates: str | None = field(default=None, metadata=opt("Languages detected among (--lang-candidates)."))
    max_errors: float = field(default=0.01, metadata=opt("Share of captions that may fail.", operational=True))

    def __post_init__(self) -> None:
        require_extra("lingua", "lingua-language-detector")
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"lang={self.target}:{self.min_score}: the minimum confidence lies in [0, 1]")
        for code in [*self.target.split(","), *(candidate_codes(self.target, self.candidates) or [])]:
            if code.strip():
                _language(code)

    @classmethod
    def from_spec(cls, arg: str | None, lang: str, options: TextOptions) -> Lang:
        code, _, minimum = (arg or lang).partition(":")
        try:
            min_score = float(minimum) if minimum else 0.0
        except ValueError:
            raise ConfigError(
                f"--filter lang takes LANG or LANG:MIN_SCORE, e.g. lang=it:0.5 (got lang={arg})"
            ) from None
        return cls(code.strip().lower(), min_score, options.lang_candidates, options.max_errors)

    def build(self) -> LanguageFilter:
        return LanguageFilter(self.target, self.min_score, self.candidates)

    def describe(self) -> str:
        return f"lang={self.target}" + (f":{self.min_score:g}" if self.min_score else "")

    def error_budget(self) -> float:
        return self.max_errors
