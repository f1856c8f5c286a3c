"""Arabic caption preprocessing, as the WAP (Arabic CLIP) card describes it, for any Arabic build:

    --filter ar-normalize        strip diacritics (tashkeel) and tatweel; digits and Latin words stay
    --filter ar-min-tokens=3     drop captions with fewer than 3 tokens (after normalisation)

Both leave rows in other languages untouched, so they are safe in a mixed build (`--lang ar,en`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from capbuild.errors import ConfigError
from capbuild.filters.base import CaptionFilter, CaptionRewriter, FilterResult
from capbuild.options import opt
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.steps import Filter, Rewriter, register_step

# Harakat, tanwin, shadda, sukun (U+064B-U+065F), superscript alef (U+0670), Quranic annotation
# marks (U+06D6-U+06ED) and tatweel (U+0640, the elongation stroke).
TASHKEEL = "\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed"
TATWEEL = "\u0640"
STRIP = re.compile(f"[{TASHKEEL}{TATWEEL}]")
SPACES = re.compile(r"\s+")
# A token counts when it holds a letter or a digit of any script (Arabic, Latin, Arabic-Indic digits).
WORD = re.compile(r"\w", re.UNICODE)


def normalise_arabic(text: str) -> str:
    """`text` without tashkeel and tatweel, whitespace collapsed; every other character kept."""
    return SPACES.sub(" ", STRIP.sub("", text)).strip()


def count_tokens(text: str) -> int:
    """Whitespace tokens that hold a letter or digit (a lone punctuation mark is no token)."""
    return sum(1 for token in text.split() if WORD.search(token))


def _is_arabic(lang: str | None) -> bool:
    return (lang or "").split("-")[0] in ("ar", "arz", "ary", "apc", "acm")


class ArabicNormalizeFilter(CaptionRewriter):
    """Rewrites `caption` and `captions` of Arabic rows with `normalise_arabic`; drops a row only when
    nothing is left of its caption (a caption made of diacritics)."""

    name = "ar-normalize"

    empty_value = "empty after normalisation"

    def rewrite(self, text: str) -> str:
        return normalise_arabic(text)

    def rewrites(self, lang: str | None) -> bool:
        return _is_arabic(lang)


class ArabicMinTokensFilter(CaptionFilter):
    """Drops Arabic captions with fewer than N tokens: '--filter ar-min-tokens=3' (WAP's threshold)."""

    name = "ar-min-tokens"

    def __init__(self, minimum: int = 3) -> None:
        self.minimum = minimum

    def apply(self, batch: pa.Table) -> FilterResult:
        return self.result(batch, self.score(batch["caption"].to_pylist(), batch["lang"].to_pylist()))

    def score(self, captions: list[str], langs: list[str | None] | None = None) -> list[Any]:
        """Token counts of the Arabic captions (all captions when no languages are given); None
        for the rows of other languages, which are kept."""
        langs = langs if langs is not None else ["ar"] * len(captions)
        return [count_tokens(c or "") if _is_arabic(lang) else None for c, lang in zip(captions, langs, strict=True)]

    def passes(self, value: Any) -> bool:
        return value is None or value >= self.minimum

    def describe(self) -> str:
        return f"{self.name}={self.minimum}"


@register_step
@dataclass(frozen=True)
class ArabicNormalize(Rewriter):
    """'ar-normalize': strips tashkeel and tatweel from Arabic rows."""

    name: ClassVar[str] = "ar-normalize"

    def build(self) -> ArabicNormalizeFilter:
        return ArabicNormalizeFilter()


@register_step
@dataclass(frozen=True)
class ArabicMinTokens(Filter):
    """'ar-min-tokens=N': drops Arabic captions with fewer than N tokens."""

    name: ClassVar[str] = "ar-min-tokens"
    minimum: int = field(default=3, metadata=opt("Fewest tokens an Arabic caption keeps."))

    @classmethod
    def from_spec(cls, arg: str | None, lang: str, options: TextOptions) -> ArabicMinTokens:
        if arg is None:
            return cls()
        if not arg.strip().isdigit():
            raise ConfigError(f"--filter ar-min-tokens takes a whole number, e.g. ar-min-tokens=3 (got {arg!r})")
        return cls(int(arg))

    def build(self) -> ArabicMinTokensFilter:
        return ArabicMinTokensFilter(self.minimum)

    def describe(self) -> str:
        return self.build().describe()
