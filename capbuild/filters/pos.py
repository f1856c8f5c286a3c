"""The PROPN filter: drop captions that are mostly proper nouns ("Roberto Baggio nel 1994").

The ratio of a caption is  PROPN tokens / counted tokens,  where the tokens are the tagger's words
with their Universal POS tag and

- `words` (default): every token except punctuation, symbols and whitespace (UPOS PUNCT, SYM, SPACE);
- `all`: every token except whitespace (punctuation and symbols count, as clip-indonesian did).

A caption with no counted token has ratio 0.0. A caption is dropped when its ratio >= the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from capbuild.filters.base import CaptionFilter, FilterContext, register_filter
from capbuild.filters.options import PosOptions
from capbuild.filters.pos_backends import PosBackend, check_backend, make_backend

NON_WORD_UPOS = frozenset({"PUNCT", "SYM", "SPACE"})


def propn_ratio(upos: Sequence[str], denominator: str = "words") -> float:
    """Share of PROPN among a caption's counted tokens (see the module docstring)."""
    excluded = NON_WORD_UPOS if denominator == "words" else frozenset({"SPACE"})
    counted = [tag for tag in upos if tag not in excluded]
    if not counted:
        return 0.0
    return sum(tag == "PROPN" for tag in counted) / len(counted)


@register_filter
class PropnFilter(CaptionFilter):
    """'--filter propn=0.8': drops a caption whose PROPN ratio is >= 0.8; keeps the ratio in `propn_ratio`.

    From Python: `PropnFilter(0.8, lang="fr").score(["Lyon, France"])` -> [1.0].
    """

    name = "propn"
    score_column = "propn_ratio"

    def __init__(self, threshold: float = 0.8, lang: str = "en", options: PosOptions | None = None, **kwargs: Any):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"propn={threshold}: the threshold is a share of tokens in (0, 1], e.g. propn=0.8")
        self.threshold = threshold
        self.lang = lang
        if options is not None and kwargs:
            raise TypeError("PropnFilter takes either options=PosOptions(...) or its fields as keywords, not both")
        self.options = options or PosOptions(**kwargs)
        check_backend(lang, self.options)
        self._backend: PosBackend | None = None

    @classmethod
    def from_spec(cls, arg: str | None, context: FilterContext) -> PropnFilter:
        try:
            threshold = float(arg) if arg is not None else 0.8
        except ValueError:
            raise ValueError(f"--filter propn takes a share such as propn=0.8 (got propn={arg})") from None
        return cls(threshold, context.lang, PosOptions.from_options(context.options))

    @property
    def backend(self) -> PosBackend:
        """The tagger, loaded on first use (so that building the filter chain stays cheap)."""
        if self._backend is None:
            self._backend = make_backend(self.lang, self.options)
        return self._backend

    def score(self, captions: list[str]) -> list[float]:
        tags = self.backend.tag(captions)
        return [propn_ratio(t, self.options.propn_denominator) for t in tags]

    def passes(self, value: Any) -> bool:
        return value < self.threshold

    def describe(self) -> str:
        return f"propn={self.threshold:g}"
