"""The PROPN filter: drop captions that are mostly proper nouns ("Roberto Baggio nel 1994").

The ratio of a caption is  PROPN tokens / counted tokens,  where the tokens are the tagger's words
with their Universal POS tag and

- `words` (default): every token except punctuation, symbols and whitespace (UPOS PUNCT, SYM, SPACE);
- `all`: every token except whitespace (punctuation and symbols count, as clip-indonesian did).

A caption with no counted token has ratio 0.0. A caption is dropped when its ratio >= the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from capbuild.errors import ConfigError
from capbuild.filters.base import CaptionFilter, FilterResult, score_each
from capbuild.filters.options import PosOptions
from capbuild.filters.pos_backends import PosBackend, check_backend, make_backend
from capbuild.options import opt
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.steps import Filter, register_step

NON_WORD_UPOS = frozenset({"PUNCT", "SYM", "SPACE"})


def propn_ratio(upos: Sequence[str], denominator: str = "words") -> float:
    """Share of PROPN among a caption's counted tokens (see the module docstring)."""
    excluded = NON_WORD_UPOS if denominator == "words" else frozenset({"SPACE"})
    counted = [tag for tag in upos if tag not in excluded]
    if not counted:
        return 0.0
    return sum(tag == "PROPN" for tag in counted) / len(counted)


class PropnFilter(CaptionFilter):
    """'--filter propn=0.8': drops a caption whose PROPN ratio is >= 0.8; keeps the ratio in `propn_ratio`.
    A caption the tagger fails on is dropped with its error.

    From Python: `PropnFilter(0.8, lang="fr").score(["Lyon, France"])` -> [1.0].
    """

    name = "propn"
    score_column = "propn_ratio"
    scores: ClassVar[dict[str, pa.DataType]] = {"propn_ratio": pa.float32()}

    def __init__(self, threshold: float = 0.8, lang: str = "en", options: PosOptions | None = None, **kwargs: Any):
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(f"propn={threshold}: the threshold is a share of tokens in (0, 1], e.g. propn=0.8")
        self.threshold = threshold
        # A build of several languages (`--lang it,ar`) tags each row with its own language's model.
        self.langs = [code.strip() for code in lang.split(",") if code.strip()]
        self.lang = self.langs[0]
        if options is not None and kwargs:
            raise TypeError("PropnFilter takes either options=PosOptions(...) or its fields as keywords, not both")
        self.options = options or PosOptions(**kwargs)
        for code in self.langs:
            check_backend(code, self.options)
        self._backends: dict[str, PosBackend] = {}

    def backend(self, lang: str | None = None) -> PosBackend:
        """The tagger of a language (default: the first), loaded on first use so that building
        the filter chain stays cheap."""
        code = lang if lang in self.langs else self.lang
        if code not in self._backends:
            self._backends[code] = make_backend(code, self.options)
        return self._backends[code]

    def score(self, captions: list[str], lang: str | None = None) -> list[float]:
        tags = self.backend(lang).tag(captions)
        return [propn_ratio(t, self.options.propn_denominator) for t in tags]

    def apply(self, batch: pa.Table) -> FilterResult:
        captions = batch["caption"].to_pylist()
        langs = batch["lang"].to_pylist() if len(self.langs) > 1 else [self.lang] * len(captions)
        values: list[float | None] = [0.0] * len(captions)
        errors: dict[int, str] = {}
        for lang in sorted(set(langs), key=str):
            rows = [i for i, row_lang in enumerate(langs) if row_lang == lang]
            self.backend(lang)  # a model that does not load stops the build; a caption that breaks it does not
            scored, failed = score_each(lambda texts, code=lang: self.score(texts, code), [captions[i] for i in rows])
            for i, value in zip(rows, scored, strict=True):
                values[i] = value
            errors.update({rows[j]: error for j, error in failed.items()})
        return self.result(batch, values, errors)

    def passes(self, value: Any) -> bool:
        return value < self.threshold

    def describe(self) -> str:
        return f"propn={self.threshold:g}"


@register_step
@dataclass(frozen=True)
class Propn(Filter):
    """'propn=R': drops captions whose share of proper nouns is >= R (POS tagger from `pos`)."""

    name: ClassVar[str] = "propn"
    scores: ClassVar[dict[str, pa.DataType]] = PropnFilter.scores
    threshold: float = field(default=0.8, metadata=opt("Smallest PROPN ratio dropped."))
    lang: str = field(default="en", metadata=opt("Language(s) of the captions, comma-separated."))
    pos: PosOptions = field(default_factory=PosOptions, metadata=opt("How captions are tagged."))
    max_errors: float = field(default=0.01, metadata=opt("Share of captions that may fail.", operational=True))

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ConfigError(f"propn={self.threshold}: the threshold is a share of tokens in (0, 1], e.g. propn=0.8")
        for code in self.lang.split(","):
            if code.strip():
                check_backend(code.strip(), self.pos)

    @classmethod
    def from_spec(cls, arg: str | None, lang: str, options: TextOptions) -> Propn:
        try:
            threshold = float(arg) if arg is not None else 0.8
        except ValueError:
            raise ConfigError(f"--filter propn takes a share such as propn=0.8 (got propn={arg})") from None
        return cls(threshold, lang, PosOptions.from_options(options), options.max_errors)

    def build(self) -> PropnFilter:
        return PropnFilter(self.threshold, self.lang, self.pos)

    def describe(self) -> str:
        return f"propn={self.threshold:g}"

    def error_budget(self) -> float:
        return self.max_errors
