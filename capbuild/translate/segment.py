"""Long, noisy inputs: cut into sentences (and over-long sentences into word windows) before
translation, since sentence-level MT models loop or truncate on paragraph-long input."""

from __future__ import annotations

import re

SPLIT_ABOVE_TOKENS = 96  # inputs longer than this (in subwords) are translated sentence by sentence
MAX_SEGMENT_WORDS = 60
_SENTENCE_END = re.compile(r"(?<=[.!?;\u3002\uff01\uff1f\u061f\u06d4])\s+")


def split_sentences(text: str) -> list[str]:
    """Sentences of `text`; a sentence of more than MAX_SEGMENT_WORDS words is cut into windows."""
    segments: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        words = sentence.split()
        for start in range(0, len(words), MAX_SEGMENT_WORDS):
            segments.append(" ".join(words[start : start + MAX_SEGMENT_WORDS]))
    return [s for s in segments if s] or [text]
