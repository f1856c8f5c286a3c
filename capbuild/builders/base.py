"""The Builder protocol: one class per source that parses raw files into caption-table rows."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}


@dataclass(frozen=True)
class SourceInfo:
    """What a dataset card needs to know of a source."""

    name: str
    license: str
    citation: str
    homepage: str


@dataclass
class Builder(ABC):
    """Parses one source's raw files into caption-table rows (see capbuild.table.make_row).

    A builder never downloads images and never translates. Rows it cannot use are counted in
    `skipped` by reason, never silently dropped; quirks it repairs are counted in `repaired`.
    """

    info: ClassVar[SourceInfo]
    lang: str = "en"
    skipped: Counter[str] = field(default_factory=Counter, init=False)
    repaired: Counter[str] = field(default_factory=Counter, init=False)

    @abstractmethod
    def rows(self) -> Iterator[dict[str, Any]]:
        """Yield caption-table rows in a deterministic order."""

    @abstractmethod
    def config(self) -> dict[str, Any]:
        """The options that decide this builder's output (they go into the build fingerprint)."""

    def report(self) -> dict[str, Any]:
        return {"skipped": dict(sorted(self.skipped.items())), "repaired": dict(sorted(self.repaired.items()))}


def file_url(path: Path) -> str:
    """A file:// URL for a local path, as img2dataset reads it."""
    return path.resolve().as_uri()


def split_from_name(name: str, default: str = "train") -> str:
    """Guess a split from a file name such as captions_val2014.json or Flickr_8k.devImages.txt."""
    lowered = name.lower()
    for token, split in SPLIT_NAMES.items():
        if token in lowered:
            return split
    return default


def find_image(dirs: list[Path], *relative: str) -> Path:
    """The first existing DIR/relative among the image folders (the first candidate if none exists)."""
    candidates = [d / r for d in dirs for r in relative if r]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]
