"""XTD10: 1,000 COCO 2014 images with a human caption in each of 11 languages, for cross-lingual retrieval.

The repository (github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10) holds `test_image_names.txt`
and `test_1kcaptions_{lang}.txt` aligned line by line, in XTD10/ (es, it, ko, pl, ru, tr, zh, en),
MIC/ (de, fr) and STAIR/ (jp: Japanese, STAIR Captions). 800 of the images are COCO *train2014* files.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from capbuild.builders.base import register
from capbuild.builders.evalset import (
    TEST_SPLIT,
    EvalRecord,
    EvalSetBuilder,
    files_under,
    parse_languages,
    read_lines,
)
from capbuild.builders.image_ref import coco_ref
from capbuild.errors import ConfigError

NAME = "xtd10"
LICENCE = "other"
LICENCE_NOTE = "Adobe Research License: research use only; the images keep their COCO (Flickr) terms."
HOMEPAGE = "https://github.com/adobe-research/Cross-lingual-Test-Dataset-XTD10"
CITATION = """@article{aggarwal2020towards,
  title={Towards Zero-shot Cross-lingual Image Retrieval},
  author={Aggarwal, Pranav and Kale, Ajinkya},
  journal={arXiv preprint arXiv:2012.05107},
  year={2020}
}
@inproceedings{yoshikawa2017stair,
  title={{STAIR} Captions: Constructing a Large-Scale {Japanese} Image Caption Dataset},
  author={Yoshikawa, Yuya and Shigeto, Yutaro and Takeuchi, Akikazu},
  booktitle={Proceedings of the 55th Annual Meeting of the Association for Computational Linguistics},
  year={2017}
}
@inproceedings{rajendran2016bridge,
  title={Bridge Correlational Neural Networks for Multilingual Multimodal Representation Learning},
  author={Rajendran, Janarthanan and Khapra, Mitesh M. and Chandar, Sarath and Ravindran, Balaraman},
  booktitle={Proceedings of NAACL-HLT},
  year={2016}
}"""

NAMES_FILE = "test_image_names.txt"
CAPTIONS_FILE = re.compile(r"^test_1kcaptions_(?P<lang>[a-z]+)\.txt$")
# The repository names Japanese `jp`; captions are tagged with the ISO 639-1 code.
FILE_LANG = {"jp": "ja"}
LANG_ALIASES = {"jp": "ja"}
COCO_IMAGES = "http://images.cocodataset.org"
COCO_SUBSET = re.compile(r"COCO_((?:train|val)2014)_")


def find_files(inputs: list[Path]) -> tuple[dict[str, Path], list[Path]]:
    """Caption files by language and every image-name list, anywhere under the inputs."""
    captions: dict[str, Path] = {}
    names: list[Path] = []
    for path in files_under(inputs):
        if path.name == NAMES_FILE:
            names.append(path)
            continue
        match = CAPTIONS_FILE.match(path.name)
        if match:
            lang = FILE_LANG.get(match["lang"], match["lang"])
            if lang in captions:
                raise ConfigError(f"two XTD10 caption files for {lang!r}: {captions[lang]} and {path}; pass one")
            captions[lang] = path
    if not names:
        raise ConfigError(f"no {NAMES_FILE} under {[str(p) for p in inputs]}: pass the XTD10 repository or folder")
    if not captions:
        raise ConfigError(f"no test_1kcaptions_LANG.txt under {[str(p) for p in inputs]}")
    return captions, names


def names_for(captions: Path, names: list[Path]) -> Path:
    """The image-name list that a caption file is aligned with: the one in its folder, else the
    nearest one above it, else the first found (the repository's MIC/ and STAIR/ follow XTD10/'s order)."""
    for folder in (captions.parent, *captions.parent.parents):
        for candidate in names:
            if candidate.parent == folder:
                return candidate
    return names[0]


def parse_xtd10(inputs: list[Path], langs: str, skipped: Counter[str], repaired: Counter[str]) -> Iterator[EvalRecord]:
    """One record per image and language (split `test`), languages in the order asked for."""
    captions, names = find_files(inputs)
    wanted = parse_languages(langs, LANG_ALIASES) or sorted(captions)
    missing = [lang for lang in wanted if lang not in captions]
    if missing:
        raise ConfigError(
            f"XTD10 has no captions for {', '.join(missing)} under the input (found: {', '.join(sorted(captions))}); "
            "de and fr are in the repository's MIC/ folder, ja (jp) in STAIR/"
        )
    for lang in wanted:
        names_path = names_for(captions[lang], names)
        image_names = read_lines(names_path, repaired)
        lines = read_lines(captions[lang], repaired)
        if len(lines) != len(image_names):
            raise ConfigError(
                f"{captions[lang]} has {len(lines)} lines but {names_path} has {len(image_names)}: "
                "XTD10 files are aligned line by line; use the files as published"
            )
        for name, caption in zip(image_names, lines, strict=True):
            name, caption = name.strip(), caption.strip()
            if not name:
                skipped["line_without_image_name"] += 1
                continue
            if not caption:
                skipped["empty_caption"] += 1
                continue
            try:
                ref = coco_ref(name)
            except ValueError:
                skipped["image_name_not_coco"] += 1
                continue
            yield _record(name, ref, lang, caption)


def _record(name: str, ref: str, lang: str, caption: str) -> EvalRecord:
    subset = COCO_SUBSET.match(name)
    paths = (name, f"{subset[1]}/{name}") if subset else (name, f"train2014/{name}", f"val2014/{name}")
    return EvalRecord(
        source_id=f"{lang}/{name}",
        image_ref=ref,
        lang=lang,
        captions=[caption],
        split=TEST_SPLIT,
        paths=paths,
        url=f"{COCO_IMAGES}/{subset[1]}/{name}" if subset else None,
        meta={"file_name": name},
    )


@register
@dataclass
class Xtd10Builder(EvalSetBuilder):
    """XTD10 from the repository (or any folder holding its files); split `test`."""

    name = NAME
    summary = (
        "XTD10 evaluation set: 1,000 COCO 2014 images, a caption in each of 11 languages (XTD10/, MIC/, STAIR/); "
        "--lang it,es or all; one row per image and language."
    )
    example = "capbuild xtd10 Cross-lingual-Test-Dataset-XTD10/ --lang it,es --images coco2014/ --out xtd10/"
    licence = LICENCE
    citation = CITATION
    homepage = HOMEPAGE

    def records(self) -> Iterator[EvalRecord]:
        return parse_xtd10(self.local_inputs(), self.lang, self.skipped, self.repaired)

    @classmethod
    def limitations(cls) -> list[str]:
        return [LICENCE_NOTE, "800 of the 1,000 images are COCO train2014 images: decontaminate COCO train builds."]
