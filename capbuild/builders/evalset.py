"""What the evaluation-set parsers (xtd10, multi30k, xm3600) share: the record they yield, where its
image is, which languages were asked for, and line-aligned text files read without losing a line."""

from __future__ import annotations

import gzip
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from capbuild.builders.base import IMAGE_DIRS_OPTION, Builder, file_url, find_image
from capbuild.errors import ConfigError, InputError

TEST_SPLIT = "test"
ALL_LANGUAGES = "all"


@dataclass(frozen=True)
class EvalRecord:
    """One image in one language: every caption of it, its identity and where its file may be.

    `paths` are the image's paths relative to an --images folder, tried in order; `url` is its
    public URL (None when the set publishes none).
    """

    source_id: str
    image_ref: str
    lang: str
    captions: list[str]
    split: str
    paths: tuple[str, ...]
    url: str | None
    meta: dict[str, Any] = field(default_factory=dict)


def image_url(record: EvalRecord, image_dirs: list[Path]) -> str | None:
    """file:// URL of the image under the --images folders when it is there, else its public URL;
    when neither, the first candidate path (the image stage then counts it as missing)."""
    if image_dirs:
        path = find_image(image_dirs, *record.paths)
        if path.is_file() or record.url is None:
            return file_url(path)
    return record.url


def parse_languages(text: str | Iterable[str], aliases: dict[str, str] | None = None) -> list[str] | None:
    """'it,es' -> ['it', 'es'] (aliases such as jp -> ja applied); 'all' -> None (every language found)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    langs = [item.strip().lower() for item in items if item.strip()]
    if not langs:
        raise ConfigError("--lang needs at least one language code, e.g. --lang it or --lang it,es (or all)")
    if ALL_LANGUAGES in langs:
        return None
    aliases = aliases or {}
    return list(dict.fromkeys(aliases.get(lang, lang) for lang in langs))


def files_under(inputs: list[Path]) -> list[Path]:
    """Every file under the inputs (files as given, folders walked), sorted, hidden ones left out."""
    files: list[Path] = []
    for path in inputs:
        if path.is_dir():
            files.extend(
                sorted(
                    p
                    for p in path.rglob("*")
                    if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts)
                )
            )
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"--input {path} does not exist")
    return files


def read_lines(path: Path, repaired: Counter[str]) -> list[str]:
    """The lines of a (possibly gzipped) text file, one per `\\n`: CRLF and a BOM removed, nothing
    else split (str.splitlines would also cut at U+2028 or \\x85 and break the alignment by line)."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        repaired["invalid_utf8_replaced"] += 1
    lines = text.removeprefix("\ufeff").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


@dataclass
class EvalSetBuilder(Builder):
    """A builder over an evaluation-set parser: rows of split `test` (every caption kept), `--lang`
    one language, several (it,es) or all. Subclasses implement `records`."""

    default_lang: ClassVar[str] = ALL_LANGUAGES
    image_dirs: list[Path] = field(default_factory=list, metadata=IMAGE_DIRS_OPTION)

    @abstractmethod
    def records(self) -> Iterator[EvalRecord]:
        """The set's records, in the order of its files."""

    def rows(self) -> Iterator[dict[str, Any]]:
        dirs = [Path(d) for d in self.image_dirs]
        for record in self.records():
            url = image_url(record, dirs)
            if url is None:
                self.skipped["no_image"] += 1
                continue
            yield self.make_row(
                source_id=record.source_id,
                captions=record.captions,
                image_url=url,
                image_ref=record.image_ref,
                lang=record.lang,
                split=record.split,
                meta=record.meta,
            )
