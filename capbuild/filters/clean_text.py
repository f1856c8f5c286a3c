"""The `clean` step's text function: ftfy, NFC, whitespace, with a fast path for plain ASCII."""

from __future__ import annotations

import functools
import re
import unicodedata

import ftfy

WHITESPACE = re.compile(r"\s+")


def clean_caption(text: str) -> str:
    """Repair mojibake and HTML entities (ftfy), compose to NFC, collapse whitespace; "" when no
    visible character is left (a caption of zero-width spaces, word joiners, BOMs, soft hyphens).

    Printable ASCII with no `&` or `<` is left unchanged by ftfy (no entity, markup, escape sequence,
    control character or mojibake can hide in it) and by NFC, so only its spaces are collapsed.
    """
    if text.isascii() and text.isprintable() and "&" not in text and "<" not in text:
        return " ".join(text.split())
    return clean_caption_full(text)


@functools.lru_cache(maxsize=256)
def clean_caption_full(text: str) -> str:
    """clean_caption without the fast path (for any text). Cached: a row's caption is mostly also in
    its `captions` list, and ftfy is the step's whole cost."""
    text = WHITESPACE.sub(" ", unicodedata.normalize("NFC", ftfy.fix_text(text))).strip()
    return text if any(unicodedata.category(c) != "Cf" and not c.isspace() for c in text) else ""
