"""Flickr8k: Flickr8k.token.txt (`image.jpg#N<TAB>caption`), split lists, translated token files."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capbuild.builders.base import IMAGE_DIRS_OPTION, Builder, file_url, find_image, register
from capbuild.builders.image_ref import flickr_ref
from capbuild.errors import ConfigError, InputError
from capbuild.options import opt

TOKEN_LINE = re.compile(r"^(?P<image>[^\t#]+)#(?P<index>\d+)\t(?P<caption>.*)$")
# The well-known bogus id "2258277193_586949ec62.jpg.1": an image name with a stray numeric suffix.
BOGUS_SUFFIX = re.compile(r"^(?P<image>.+\.jpe?g)\.\d+$", re.IGNORECASE)
SPLIT_LISTS = {"train": "trainImages", "val": "devImages", "test": "testImages"}
UNASSIGNED_SPLIT = "unassigned"


def parse_token_file(path: Path, skipped: Counter[str], repaired: Counter[str]) -> dict[str, list[tuple[int, str]]]:
    """Read a token file into image name -> [(caption index, caption)], in file order.

    Repairs what real files hold: CRLF, a caption broken by a raw newline (the continuation line
    has no id and is joined to the caption before it), bogus ids with a numeric suffix.
    """
    captions: dict[str, list[tuple[int, str]]] = {}
    last: tuple[str, int] | None = None
    for line in _decode_lines(path, repaired):
        if not line.strip():
            continue
        match = TOKEN_LINE.match(line)
        if match is None:
            if last is None:
                skipped["malformed_line"] += 1
                continue
            image, position = last
            index, caption = captions[image][position]
            captions[image][position] = (index, f"{caption}\n{line.strip()}")
            repaired["continuation_line_joined"] += 1
            continue
        image = match["image"].strip()
        bogus = BOGUS_SUFFIX.match(image)
        if bogus:
            image = bogus["image"]
            repaired["bogus_image_id_fixed"] += 1
        caption = match["caption"].strip()
        if not caption:
            skipped["empty_caption"] += 1
            last = None
            continue
        captions.setdefault(image, []).append((int(match["index"]), caption))
        last = (image, len(captions[image]) - 1)
    for entries in captions.values():
        entries.sort(key=lambda entry: entry[0])
    return captions


def _decode_lines(path: Path, counts: Counter[str]) -> Iterator[str]:
    for raw in path.read_bytes().splitlines():
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            # Such lines come from editors that saved Windows-1252; latin-1 decodes any byte.
            try:
                line = raw.decode("cp1252")
            except UnicodeDecodeError:
                line = raw.decode("latin-1")
            counts["line_not_utf8_read_as_cp1252"] += 1
        yield line.lstrip("\ufeff")


@register
@dataclass
class Flickr8kBuilder(Builder):
    """Flickr8k from the token file and split lists found in `inputs` (folders or files).

    With `captions` (a translated token file in the same layout), those captions in `lang` become
    the image's captions and the English ones stay in `meta` and `caption_orig`.
    """

    name = "flickr8k"
    summary = "Flickr8k: Flickr8k.token.txt, its split lists and translated token files (--captions)."
    example = (
        "capbuild flickr8k Flickr8k_text/ --images Flicker8k_Dataset/ --captions Flickr8k.arabic.full.txt "
        "--lang ar --out ar-flickr8k/"
    )
    homepage = "https://hockenmaier.cs.illinois.edu/8k-pictures.html"
    citation = """@article{hodosh2013framing,
  title={Framing Image Description as a Ranking Task: Data, Models and Evaluation Metrics},
  author={Hodosh, Micah and Young, Peter and Hockenmaier, Julia},
  journal={Journal of Artificial Intelligence Research},
  volume={47},
  pages={853--899},
  year={2013}
}"""
    image_dirs: list[Path] = field(default_factory=list, metadata=IMAGE_DIRS_OPTION)
    captions: Path | None = field(default=None, metadata=opt("Translated token file, captions in --lang."))

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.captions is None and self.lang != "en":
            raise ConfigError(
                f"Flickr8k.token.txt is English but --lang is {self.lang!r}: pass --captions FILE with "
                f"captions in {self.lang!r}, or use --lang en"
            )

    def check(self, fetch_images: bool = True) -> None:
        if fetch_images and not self.image_dirs:
            raise ConfigError(
                "Flickr8k files hold no image URLs: pass --images DIR (the Flicker8k_Dataset folder), "
                "or --no-images for the caption table alone"
            )
        super().check(fetch_images)
        if self.captions is not None and not Path(self.captions).is_file():
            raise InputError(f"--captions {str(self.captions)!r} is not a file")

    def rows(self) -> Iterator[dict[str, Any]]:
        token_file, split_files = self._find_files()
        english = parse_token_file(token_file, self.skipped, self.repaired)
        translated = parse_token_file(self.captions, self.skipped, self.repaired) if self.captions else None
        splits = self._read_splits(split_files)
        names = list(english) + [n for n in (translated or {}) if n not in english]
        for name in names:
            row = self._row(name, english.get(name, []), translated, splits)
            if row is not None:
                yield row

    def _row(
        self,
        name: str,
        english: list[tuple[int, str]],
        translated: dict[str, list[tuple[int, str]]] | None,
        splits: dict[str, str],
    ) -> dict[str, Any] | None:
        meta: dict[str, Any] = {"file_name": name}
        caption_orig = lang_orig = None
        if translated is None:
            captions = [c for _, c in english]
        else:
            own = translated.get(name)
            if not own:
                self.skipped["no_translated_captions"] += 1
                return None
            captions = [c for _, c in own]
            by_index = dict(english)
            if english:
                caption_orig = by_index.get(own[0][0], english[0][1])
                lang_orig = "en"
                meta["captions_en"] = [c for _, c in english]
        if splits and name not in splits:
            self.repaired["image_in_no_split_list"] += 1
        return self.make_row(
            source_id=name,
            split=splits.get(name, UNASSIGNED_SPLIT if splits else "train"),
            image_url=file_url(find_image(self.image_dirs, name)) if self.image_dirs else None,
            image_ref=_flickr_image_ref(name),
            captions=captions,
            caption_orig=caption_orig,
            captions_orig=meta.get("captions_en"),
            lang_orig=lang_orig,
            meta=meta,
        )

    def _find_files(self) -> tuple[Path, list[Path]]:
        files: list[Path] = []
        for path in self.local_inputs():
            files.extend(sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path])
        tokens = [f for f in files if "token" in f.name.lower() and "lemma" not in f.name.lower()]
        if not tokens:
            raise InputError(
                f"no Flickr8k.token.txt among {[str(p) for p in self.inputs]}: pass the Flickr8k_text "
                "folder or the token file itself with --input"
            )
        if len(tokens) > 1:
            raise InputError(f"several token files found ({[str(t) for t in tokens]}): pass the one to use")
        split_files = [f for f in files if any(tag.lower() in f.name.lower() for tag in SPLIT_LISTS.values())]
        return tokens[0], split_files

    def _read_splits(self, split_files: list[Path]) -> dict[str, str]:
        splits: dict[str, str] = {}
        for path in split_files:
            split = next(s for s, tag in SPLIT_LISTS.items() if tag.lower() in path.name.lower())
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.strip():
                    splits[line.strip()] = split
        return splits


def _flickr_image_ref(name: str) -> str | None:
    try:
        return flickr_ref(name)
    except ConfigError:
        return None
