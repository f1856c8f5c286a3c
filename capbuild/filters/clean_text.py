"""The `clean` step's text function: ftfy, NFC, whitespace, with a fast path for plain ASCII."""

from __future__ import annotations

import functools
import re
import unicodedata

import ftfy
import pyarrow as pa

WHITESPACE = re.compile(r"\s+")
# ftfy.fix_text's own default configuration, built once: given none, fix_text builds it per call,
# which is a quarter of its time on a short caption.
FTFY_CONFIG = ftfy.TextFixerConfig(explain=False)


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
    text = WHITESPACE.sub(" ", unicodedata.normalize("NFC", ftfy.fix_text(text, FTFY_CONFIG))).strip()
    return text if any(unicodedata.category(c) != "Cf" and not c.isspace() for c in text) else ""


def clean_texts(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """clean_caption over a string column (nulls read as ""), with the fast path done by Arrow kernels:
    printable ASCII without `&` or `<` only has runs of spaces collapsed and its ends trimmed (the only
    whitespace printable ASCII holds is the space); each distinct other text goes once through
    clean_caption_full."""
    import pyarrow.compute as pc

    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.string())
    texts = texts.cast(pa.string()).fill_null("")
    # ascii_is_printable is false for "", which the full path also leaves "".
    plain = pc.and_(pc.and_(pc.string_is_ascii(texts), pc.ascii_is_printable(texts)),
                    pc.invert(pc.match_substring_regex(texts, "[&<]")))  # fmt: skip
    cleaned = pc.ascii_trim(pc.replace_substring_regex(texts, pattern="  +", replacement=" "), characters=" ")
    other = pc.invert(plain)
    if not pc.any(other).as_py():
        return cleaned
    others = pc.filter(texts, other).to_pylist()
    repaired = {text: clean_caption_full(text) for text in dict.fromkeys(others)}
    replacements = pa.array([repaired[text] for text in others], pa.string())
    return pc.replace_with_mask(cleaned, other, replacements)
