"""Crossmodal-3600 (XM3600): 3,600 Open Images photos with human captions in 36 languages.

captions.jsonl holds one JSON object per image: `"image/key"` (the Open Images id) and, per language
code, `{"caption": [...], "caption/tokenized": [...]}`; the images are `images/KEY.jpg`
(google.github.io/crossmodal-3600). Every caption of a language is kept, not only the first.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from capbuild.builders.base import register
from capbuild.builders.evalset import TEST_SPLIT, EvalRecord, EvalSetBuilder, parse_languages, read_lines
from capbuild.builders.image_ref import openimages_ref
from capbuild.errors import ConfigError, InputError

NAME = "xm3600"
LICENCE = "cc-by-4.0"
LICENCE_NOTE = "Captions CC BY 4.0; the images are Open Images photos, each under its own licence (mostly CC BY 2.0)."
HOMEPAGE = "https://google.github.io/crossmodal-3600/"
CITATION = """@inproceedings{thapliyal2022crossmodal,
  title={Crossmodal-3600: A Massively Multilingual Multimodal Evaluation Dataset},
  author={Thapliyal, Ashish V. and Pont-Tuset, Jordi and Chen, Xi and Soricut, Radu},
  booktitle={Proceedings of the 2022 Conference on Empirical Methods in Natural Language Processing},
  year={2022}
}"""

KEY_FIELD = "image/key"
CAPTION_FIELD = "caption"
# XM3600 tags Hebrew with the old code `iw`; rows carry the ISO 639-1 code.
FILE_LANG = {"iw": "he"}
LANG_ALIASES = {"iw": "he"}


def parse_xm3600(path: Path, langs: str, skipped: Counter[str], repaired: Counter[str]) -> Iterator[EvalRecord]:
    """One record per image and language, every caption of that language; languages in the order asked
    for (all: the file's order), images in file order."""
    if not path.is_file():
        raise InputError(f"--input {path} is not a file: give XM3600's captions.jsonl")
    wanted = parse_languages(langs, LANG_ALIASES)
    entries = [e for e in (_entry(line, skipped) for line in read_lines(path, repaired)) if e is not None]
    found = list(dict.fromkeys(FILE_LANG.get(k, k) for _, by_lang in entries for k in by_lang))
    if wanted is None:
        wanted = found
    missing = [lang for lang in wanted if lang not in found]
    if missing:
        raise ConfigError(f"{path} has no captions in {', '.join(missing)} (it has: {', '.join(found)})")
    for lang in wanted:
        for key, by_lang in entries:
            captions = by_lang.get(lang)
            if captions is None:
                skipped[f"image_without_{lang}"] += 1
                continue
            if not captions:
                skipped["image_without_captions"] += 1
                continue
            yield EvalRecord(
                source_id=f"{lang}/{key}",
                image_ref=openimages_ref(key),
                lang=lang,
                captions=captions,
                split=TEST_SPLIT,
                paths=(f"{key}.jpg", f"images/{key}.jpg"),
                url=None,
                meta={"image_key": key},
            )


def _entry(line: str, skipped: Counter[str]) -> tuple[str, dict[str, list[str]]] | None:
    """(key, language -> non-empty stripped captions) of one line, or None counted as skipped."""
    if not line.strip():
        return None
    try:
        data: Any = json.loads(line)
    except json.JSONDecodeError:
        skipped["malformed_line"] += 1
        return None
    key = data.get(KEY_FIELD) if isinstance(data, dict) else None
    try:
        openimages_ref(str(key))
    except ValueError:
        skipped["line_without_image_key"] += 1
        return None
    by_lang: dict[str, list[str]] = {}
    for code, value in data.items():
        if code == KEY_FIELD or not isinstance(value, dict):
            continue
        raw = value.get(CAPTION_FIELD)
        raw = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
        captions = [c.strip() for c in raw if isinstance(c, str) and c.strip()]
        if len(captions) < len(raw):
            skipped["empty_caption"] += len(raw) - len(captions)
        by_lang[FILE_LANG.get(code, code)] = captions
    return str(key).lower(), by_lang


@register
@dataclass
class Xm3600Builder(EvalSetBuilder):
    """Crossmodal-3600 from captions.jsonl and its images folder."""

    name = NAME
    summary = (
        "Crossmodal-3600 evaluation set: 3,600 images, 36 languages, every caption kept; --lang ar,it or all; "
        "--images images/."
    )
    example = "capbuild xm3600 captions.jsonl --images images/ --lang all --out xm3600/"
    licence = LICENCE
    citation = CITATION
    homepage = HOMEPAGE

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.image_dirs:
            raise ConfigError("XM3600 images have no URL in captions.jsonl: pass --images FOLDER (holding KEY.jpg)")

    def records(self) -> Iterator[EvalRecord]:
        inputs = self.local_inputs()
        if len(inputs) != 1:
            raise ConfigError(f"give XM3600's captions.jsonl as the one input (got {len(inputs)})")
        return parse_xm3600(inputs[0], self.lang, self.skipped, self.repaired)

    @classmethod
    def limitations(cls) -> list[str]:
        return [LICENCE_NOTE]
