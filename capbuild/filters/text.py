"""Text steps: clean (ftfy, NFC, whitespace), unique_key, len (word count), dedup (normalised duplicates)."""

from __future__ import annotations

import hashlib
import re
import string
import unicodedata
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from capbuild.errors import ConfigError
from capbuild.filters.base import CaptionFilter, CaptionRewriter, FilterResult, Runner
from capbuild.filters.clean_text import clean_caption, clean_texts
from capbuild.options import opt
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.steps import Filter, Rewriter, register_step

WHITESPACE = re.compile(r"\s+")
# ASCII punctuation, Latin-1 and general punctuation, CJK and Arabic punctuation marks.
PUNCTUATION = re.compile(
    f"[{re.escape(string.punctuation)}\u00a1-\u00bf\u2010-\u205e\u3000-\u303f\u060c\u061b\u061f\u06d4]"
)


def normalise_for_dedup(text: str) -> str:
    """Case-folded, NFKC, punctuation removed, whitespace collapsed: what two captions that read
    the same share."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return WHITESPACE.sub(" ", PUNCTUATION.sub(" ", text)).strip()


class CleanFilter(CaptionRewriter):
    """Cleans `caption` and every entry of `captions` (clean_caption); drops rows left with an empty caption."""

    name = "clean"

    def rewrite(self, text: str) -> str:
        return clean_caption(text)

    def apply(self, batch: pa.Table) -> FilterResult:
        # What CaptionRewriter.apply does row by row, on whole columns: most captions take the
        # fast path in Arrow kernels, and only the rest cross into Python (clean_texts).
        lists = batch["captions"].combine_chunks() if batch.num_rows else pa.array([], pa.list_(pa.string()))
        # One call for both columns: a caption is mostly also in its row's list, and is repaired once.
        texts = [*batch["caption"].cast(pa.string()).chunks, lists.flatten()]
        both = clean_texts(pa.chunked_array(texts, pa.string()))
        captions, entries = both.slice(0, batch.num_rows), both.slice(batch.num_rows)
        filled = pc.not_equal(entries, "")
        parents = np.asarray(pc.filter(pc.list_parent_indices(lists), filled))
        offsets = np.concatenate([[0], np.cumsum(np.bincount(parents, minlength=len(lists)))]).astype(np.int32)
        caption_lists = pa.ListArray.from_arrays(pa.array(offsets), pc.filter(entries, filled))
        index = batch.schema.get_field_index
        batch = batch.set_column(index("caption"), "caption", captions)
        batch = batch.set_column(index("captions"), "captions", caption_lists)
        keep = pc.not_equal(captions, "").to_pylist()
        return FilterResult(batch, keep, ["" if k else self.empty_value for k in keep])


class LengthFilter(CaptionFilter):
    """Keeps captions whose number of words lies in [min, max]: '--filter len=3..60', 'len=3..'."""

    name = "len"
    score_column = "word_count"
    scores: ClassVar[dict[str, pa.DataType]] = {"word_count": pa.int32()}

    def __init__(self, minimum: int | None = None, maximum: int | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def score(self, captions: list[str]) -> list[int]:
        return [len(c.split()) for c in captions]

    def passes(self, value: Any) -> bool:
        return (self.minimum is None or value >= self.minimum) and (self.maximum is None or value <= self.maximum)

    def describe(self) -> str:
        return f"len={self.minimum or ''}..{self.maximum or ''}"


class DedupFilter(Runner):
    """Drops a row whose normalised caption an earlier row already had; the value names that row."""

    name = "dedup"

    def __init__(self) -> None:
        # Digests, not texts, so that memory stays small on millions of captions.
        self.first_key: dict[bytes, str] = {}

    def apply(self, batch: pa.Table) -> FilterResult:
        keep, values = [], []
        for key, caption in zip(batch["key"].to_pylist(), batch["caption"].to_pylist(), strict=True):
            digest = hashlib.blake2b(normalise_for_dedup(caption or "").encode(), digest_size=12).digest()
            first = self.first_key.get(digest)
            if first is None:
                self.first_key[digest] = key
            keep.append(first is None)
            values.append("" if first is None else f"duplicate of {first}")
        return FilterResult(batch, keep, values)


class UniqueKeyFilter(Runner):
    """Drops a row whose key an earlier row already had (a source listing one id twice), so that
    shard keys stay unique; builders merge such rows where the source allows it."""

    name = "unique_key"

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def apply(self, batch: pa.Table) -> FilterResult:
        keep = []
        for key in batch["key"].to_pylist():
            keep.append(key not in self.seen)
            self.seen.add(key)
        return FilterResult(batch, keep, ["" if k else "repeated key" for k in keep])


@register_step
@dataclass(frozen=True)
class Clean(Rewriter):
    """'clean' (always first): ftfy, NFC and whitespace on `caption` and `captions`."""

    name: ClassVar[str] = "clean"

    def build(self) -> CleanFilter:
        return CleanFilter()


@register_step
@dataclass(frozen=True)
class UniqueKey(Filter):
    """'unique_key' (always second): one row per key."""

    name: ClassVar[str] = "unique_key"
    stateful: ClassVar[bool] = True

    def build(self) -> UniqueKeyFilter:
        return UniqueKeyFilter()


@register_step
@dataclass(frozen=True)
class Length(Filter):
    """'len=3..60', 'len=3..', 'len=..60': keeps captions with that many words."""

    name: ClassVar[str] = "len"
    scores: ClassVar[dict[str, pa.DataType]] = LengthFilter.scores
    minimum: int | None = field(default=None, metadata=opt("Fewest words kept."))
    maximum: int | None = field(default=None, metadata=opt("Most words kept."))

    def __post_init__(self) -> None:
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ConfigError(f"len={self.minimum}..{self.maximum}: the minimum is larger than the maximum")

    @classmethod
    def from_spec(cls, arg: str | None, lang: str, options: TextOptions) -> Length:
        match = re.fullmatch(r"\s*(\d*)\s*\.\.\s*(\d*)\s*", arg or "")
        if not match or not (match[1] or match[2]):
            raise ConfigError(f"--filter len takes a word range such as len=3..60, len=3.. or len=..60 (got {arg!r})")
        return cls(int(match[1]) if match[1] else None, int(match[2]) if match[2] else None)

    def build(self) -> LengthFilter:
        return LengthFilter(self.minimum, self.maximum)

    def describe(self) -> str:
        return self.build().describe()


@register_step
@dataclass(frozen=True)
class Dedup(Filter):
    """'dedup': drops a row whose normalised caption an earlier row had."""

    name: ClassVar[str] = "dedup"
    stateful: ClassVar[bool] = True

    def build(self) -> DedupFilter:
        return DedupFilter()
