"""The Builder base class and the registry: one class per source parses raw files into caption-table rows.

A source is one module with one registered class:

    @register
    @dataclass
    class ToyBuilder(Builder):
        name = "toy"                      # the command (`capbuild toy`) and the rows' `source`
        summary = "Toy captions, one `URL<TAB>caption` a line."
        example = "capbuild toy toy.tsv --out toy-build/"
        licence = "cc-by-4.0"
        citation = "@misc{toy, title={Toy}}"
        homepage = "https://example.org/toy"
        default_lang = "en"
        upper: bool = field(default=False, metadata=opt("Upper-case the captions."))

        def rows(self):
            for path in self.input_files():
                for line in open_text(path):
                    url, caption = line.rstrip("\\n").split("\\t")
                    yield self.make_row(source_id=url, image_url=url, captions=[caption])

Put the module in capbuild/builders/ (it is imported when the registry is read) with its tests and a
line in the docs: nothing else changes. Options are dataclass fields with `capbuild.options.opt`
metadata: the CLI makes them flags and `config()` (what the build fingerprint hashes) is derived from
them. Third-party packages register
builders through the `capbuild.builders` entry-point group (each entry point names a Builder class).
"""

from __future__ import annotations

import dataclasses
import pkgutil
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import import_module
from importlib.metadata import entry_points
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

from capbuild.errors import ConfigError, InputError
from capbuild.options import CLI, is_operational, opt

SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "test": "test"}
ENTRY_POINT_GROUP = "capbuild.builders"
# The bundled sources come first on the command line, in this order; any other module of this package
# that registers a builder follows (a new source needs no line here).
BUILTIN_ORDER = ("coco", "flickr8k", "wit", "cc", "pairs", "wap")
# Rows read to check that --images folders hold the images the table names.
IMAGE_PROBE_ROWS = 20


@dataclass(frozen=True)
class SourceInfo:
    """What a dataset card needs to know of a source (recorded in the manifest's `sources`)."""

    name: str
    license: str
    citation: str
    homepage: str
    builder: str = ""


@dataclass
class Builder(ABC):
    """Parses one source's raw files into caption-table rows (see `make_row`).

    A builder never downloads images and never translates. Rows it cannot use are counted in
    `skipped` by reason, never silently dropped; quirks it repairs are counted in `repaired`.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    example: ClassVar[str] = ""
    licence: ClassVar[str] = "other"
    citation: ClassVar[str] = ""
    homepage: ClassVar[str] = ""
    default_lang: ClassVar[str] = "en"

    inputs: list[str] = field(default_factory=list, metadata=opt("Input files, folders or globs.", cli=False))
    lang: str = field(default="", metadata=opt("Language of the captions (default: the source's).", cli=False))
    skipped: Counter[str] = field(default_factory=Counter, init=False)
    repaired: Counter[str] = field(default_factory=Counter, init=False)

    def __post_init__(self) -> None:
        self.lang = self.lang or self.default_lang
        self.inputs = [str(i) for i in self.inputs]
        if not self.inputs:
            raise ConfigError(f"pass the {self.name} input files as arguments or with --input")

    @abstractmethod
    def rows(self) -> Iterator[dict[str, Any]]:
        """Yield caption-table rows in a deterministic order."""

    @property
    def source_name(self) -> str:
        """The `source` of this builder's rows (hashed into every key)."""
        return self.name

    @property
    def info(self) -> SourceInfo:
        return SourceInfo(self.source_name, self.licence, self.citation, self.homepage, self.name)

    def make_row(self, *, source_id: str, captions: list[str], image_url: str | None, **columns: Any) -> dict[str, Any]:
        """One caption-table row of this source, in `lang` unless `columns` says otherwise; without an
        `image_ref`, the one its image URL gives (capbuild.builders.image_ref.default_image_ref)."""
        from capbuild.builders.image_ref import default_image_ref
        from capbuild.table import make_row

        columns.setdefault("lang", self.lang)
        if columns.get("image_ref") is None:
            columns["image_ref"] = default_image_ref(image_url)
        return make_row(source=self.source_name, source_id=source_id, captions=captions, image_url=image_url, **columns)

    def config(self) -> dict[str, Any]:
        """The options that decide this builder's output (they go into the build fingerprint)."""
        return {
            f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.init and not is_operational(f)
        }

    def report(self) -> dict[str, Any]:
        return {"skipped": dict(sorted(self.skipped.items())), "repaired": dict(sorted(self.repaired.items()))}

    def input_files(self) -> list[str]:
        """Every input file: globs expanded, folders listed (an InputError names an input matching nothing)."""
        from capbuild.builders.inputs import expand_inputs

        return expand_inputs(self.inputs)

    def local_inputs(self) -> list[Path]:
        """The inputs as local paths (folders kept as folders; remote files copied to the input cache)."""
        from capbuild.storage import local_inputs

        return local_inputs(self.inputs)

    def check(self, fetch_images: bool = True) -> None:
        """Fail before anything is written when an input or image folder is wrong (with `fetch_images`,
        also when the image folders hold none of the first rows' images)."""
        from capbuild.builders.inputs import check_inputs

        check_inputs(self.inputs)
        dirs = [Path(d) for d in getattr(self, "image_dirs", [])]
        for folder in dirs:
            if not folder.is_dir():
                raise InputError(f"--images {str(folder)!r} is not a folder")
        if dirs and fetch_images:
            self._check_images(dirs)

    def _check_images(self, dirs: list[Path]) -> None:
        probe = dataclasses.replace(self)
        urls = [row["image_url"] for row in islice(probe.rows(), IMAGE_PROBE_ROWS)]
        local = [u for u in urls if u and u.startswith("file://")]
        if local and not any(Path(u.removeprefix("file://")).is_file() for u in local):
            raise InputError(
                f"none of the first {len(local)} images the input names is in --images "
                f"{', '.join(str(d) for d in dirs)} (first looked for: {local[0].removeprefix('file://')}); "
                "point --images at the folder that holds the image files"
            )

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """The names of the fields the CLI offers as this builder's own options."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.init and f.metadata.get(CLI, False))

    @classmethod
    def limitations(cls) -> list[str]:
        """What users should know of this source before training on it (for the dataset card)."""
        return []

    @classmethod
    def card_notes(cls) -> str:
        """Source-specific text for the dataset card's Sources section."""
        return ""


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


_REGISTRY: dict[str, type[Builder]] = {}
_loaded = False


def register(cls: type[Builder]) -> type[Builder]:
    """Register a builder class under its `name` (a class decorator); a later class of the same name wins."""
    if not getattr(cls, "name", None):
        raise ConfigError(f"{cls.__name__} needs a `name` class attribute to be registered")
    _REGISTRY[cls.name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a builder from the registry (tests that register toy builders use it)."""
    _REGISTRY.pop(name, None)


def builders() -> dict[str, type[Builder]]:
    """Every registered builder by name: the modules of this package (each source registers itself when
    imported), then the `capbuild.builders` entry points of installed packages."""
    global _loaded
    if not _loaded:
        _loaded = True
        package = __name__.rsplit(".", 1)[0]
        for module in pkgutil.iter_modules(import_module(package).__path__):
            import_module(f"{package}.{module.name}")
        for point in entry_points(group=ENTRY_POINT_GROUP):
            register(point.load())
    order = {name: i for i, name in enumerate(BUILTIN_ORDER)}
    return dict(sorted(_REGISTRY.items(), key=lambda item: (order.get(item[0], len(order)), item[0])))


def get_builder(name: str) -> type[Builder]:
    """The builder registered as `name`."""
    found = builders()
    if name not in found:
        raise ConfigError(f"no source named {name!r}; known sources: {', '.join(found)}")
    return found[name]


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


IMAGE_DIRS_OPTION = opt("Folder holding the image files, repeatable.", flag="--images")
