"""Multi30k: Flickr30k images described in English, German, French and Czech (github.com/multi30k/dataset).

Task 1 (translation): `task1/raw/{split}.{lang}.gz` with `task1/image_splits/{split}.txt`, one caption
per image, the languages translations of each other; splits train, val, test_2016_flickr,
test_2017_flickr, test_2018_flickr and test_2017_mscoco (COCO 2014 files named `NAME.jpg#ANNOTATION_ID`).
Task 2 (independent descriptions): `task2/raw/{split}.{1..5}.{lang}.gz` with
`task2/image_splits/{split}_images.txt`, five captions per image written independently in each language.
Files are found anywhere under the input, so the repository's data/ folder or a flat copy both work.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
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
from capbuild.builders.image_ref import coco_ref, flickr_ref
from capbuild.errors import ConfigError
from capbuild.options import opt

NAME = "multi30k"
LICENCE = "other"
LICENCE_NOTE = "Multi30k: research use; the images are Flickr30k's (Flickr terms of use) or COCO's."
HOMEPAGE = "https://github.com/multi30k/dataset"
CITATION = """@inproceedings{elliott2016multi30k,
  title={Multi30{K}: Multilingual {English-German} Image Descriptions},
  author={Elliott, Desmond and Frank, Stella and Sima'an, Khalil and Specia, Lucia},
  booktitle={Proceedings of the 5th Workshop on Vision and Language},
  pages={70--74},
  year={2016}
}
@article{young2014image,
  title={From image descriptions to visual denotations: New similarity metrics for semantic inference over
         event descriptions},
  author={Young, Peter and Lai, Alice and Hodosh, Micah and Hockenmaier, Julia},
  journal={Transactions of the Association for Computational Linguistics},
  volume={2},
  pages={67--78},
  year={2014}
}"""

TASK_SPLITS = {
    1: ("train", "val", "test_2016_flickr", "test_2017_flickr", "test_2018_flickr", "test_2017_mscoco"),
    2: ("train", "val", "test_2016"),
}
TASK_LANGUAGES = {1: ("en", "de", "fr", "cs"), 2: ("en", "de")}
SPLIT_ALIASES = {1: {"test_2016": "test_2016_flickr"}, 2: {"test_2016_flickr": "test_2016"}}
TASK2_CAPTIONS = 5
COCO_IMAGES = "http://images.cocodataset.org"
COCO_SUBSET = re.compile(r"COCO_((?:train|val)2014)_")


def parse_splits(task: int, text: str) -> list[str]:
    """'test_2016' -> ['test_2016_flickr'] for task 1; comma-separated; a ValueError naming the valid splits."""
    if task not in TASK_SPLITS:
        raise ConfigError(f"--task must be 1 or 2 (got {task})")
    splits = [SPLIT_ALIASES[task].get(s.strip(), s.strip()) for s in text.split(",") if s.strip()]
    unknown = [s for s in splits if s not in TASK_SPLITS[task]]
    if not splits or unknown:
        raise ConfigError(f"Multi30k task {task} splits are {', '.join(TASK_SPLITS[task])} (got {text!r})")
    return list(dict.fromkeys(splits))


def check_images(task: int, splits: list[str], has_images: bool) -> None:
    """Flickr30k images have no public URL: a Flickr split without --images fails before any output."""
    flickr = [s for s in splits if "mscoco" not in s]
    if flickr and not has_images:
        raise ConfigError(
            f"Multi30k task {task} split(s) {', '.join(flickr)} are Flickr30k images, which have no public URL: "
            "pass --images FOLDER holding them (flickr30k-images/ from the Flickr30k request form, "
            "https://shannon.cs.illinois.edu/DenotationGraph/)"
        )


def _one(files: list[Path], name: str, task: int) -> Path | None:
    matches = [f for f in files if f.name == name]
    if len(matches) > 1:  # the repository's data/ holds both tasks: prefer the one under taskN/
        matches = [f for f in matches if f"task{task}" in f.parts] or matches
    if len(matches) > 1:
        raise ConfigError(f"several Multi30k files named {name}: {[str(m) for m in matches]}; pass one folder")
    return matches[0] if matches else None


def parse_multi30k(
    inputs: list[Path],
    task: int,
    splits: str,
    langs: str,
    has_images: bool,
    skipped: Counter[str],
    repaired: Counter[str],
) -> Iterator[EvalRecord]:
    """One record per image, split and language: task 1 one caption, task 2 the five."""
    chosen = parse_splits(task, splits)
    wanted = parse_languages(langs) or list(TASK_LANGUAGES[task])
    unknown = [lang for lang in wanted if lang not in TASK_LANGUAGES[task]]
    if unknown:
        raise ConfigError(f"Multi30k task {task} has {', '.join(TASK_LANGUAGES[task])}, not {', '.join(unknown)}")
    check_images(task, chosen, has_images)
    files = files_under(inputs)
    for split in chosen:
        images_name = f"{split}.txt" if task == 1 else f"{split}_images.txt"
        images = _one(files, images_name, task)
        if images is None:
            raise ConfigError(f"no {images_name} (task {task} image list) under {[str(p) for p in inputs]}")
        names = [line.strip() for line in read_lines(images, repaired)]
        for lang in wanted:
            columns = _caption_files(files, task, split, lang)
            yield from _split_records(task, split, lang, names, columns, skipped, repaired)


def _caption_files(files: list[Path], task: int, split: str, lang: str) -> list[Path]:
    stems = [f"{split}.{lang}"] if task == 1 else [f"{split}.{i}.{lang}" for i in range(1, TASK2_CAPTIONS + 1)]
    found = []
    for stem in stems:
        path = _one(files, f"{stem}.gz", task) or _one(files, stem, task)
        if path is None:
            raise ConfigError(f"no {stem}.gz (Multi30k task {task}, {split}, {lang}) under the input")
        found.append(path)
    return found


def _split_records(
    task: int,
    split: str,
    lang: str,
    names: list[str],
    columns: list[Path],
    skipped: Counter[str],
    repaired: Counter[str],
) -> Iterator[EvalRecord]:
    captions_by_file = [read_lines(path, repaired) for path in columns]
    for path, lines in zip(columns, captions_by_file, strict=True):
        if len(lines) != len(names):
            raise ConfigError(
                f"{path} has {len(lines)} lines but the image list has {len(names)}: Multi30k files are aligned "
                "line by line; use the files as published"
            )
    images: dict[str, tuple[str, list[str]]] = {}
    for row, full_name in enumerate(names):
        if not full_name:
            skipped["line_without_image_name"] += 1
            continue
        name = full_name.split("#", 1)[0]
        captions = [lines[row].strip() for lines in captions_by_file]
        kept = [c for c in captions if c]
        if len(kept) < len(captions):
            skipped["empty_caption"] += len(captions) - len(kept)
        if not kept:
            continue
        if name in images:
            repaired["image_listed_twice_captions_merged"] += 1
            images[name][1].extend(kept)
        else:
            images[name] = (full_name, kept)
    for name, (full_name, captions) in images.items():
        record = _record(task, split, lang, name, full_name, captions, skipped)
        if record is not None:
            yield record


def _record(
    task: int, split: str, lang: str, name: str, full_name: str, captions: list[str], skipped: Counter[str]
) -> EvalRecord | None:
    coco = "mscoco" in split
    try:
        ref = coco_ref(name) if coco else flickr_ref(name)
    except ValueError:
        skipped["image_name_not_recognised"] += 1
        return None
    subset = COCO_SUBSET.match(name) if coco else None
    if coco:
        paths: tuple[str, ...] = (name, f"{subset[1]}/{name}") if subset else (name,)
    else:
        paths = (name, f"flickr30k-images/{name}")
    meta = {"file_name": name, "task": task, "multi30k_split": split}
    if full_name != name:
        meta["annotation_id"] = full_name.split("#", 1)[1]
    return EvalRecord(
        source_id=f"task{task}/{split}/{lang}/{name}",
        image_ref=ref,
        lang=lang,
        captions=captions,
        split=TEST_SPLIT if split.startswith("test") else split,
        paths=paths,
        url=f"{COCO_IMAGES}/{subset[1]}/{name}" if subset else None,
        meta=meta,
    )


@register
@dataclass
class Multi30kBuilder(EvalSetBuilder):
    """Multi30k task 1 or 2 from the repository's data/ folder (or a copy of its files)."""

    name = NAME
    summary = (
        "Multi30k (Flickr30k images; en, de, fr, cs): --task 1 (one caption per image) or 2 (five independent "
        "captions), --split test_2016 etc.; Flickr splits need --images."
    )
    example = (
        "capbuild multi30k multi30k-dataset/data/ --task 2 --split test_2016 --lang de --images flickr30k-images/ "
        "--out m30k-de/"
    )
    licence = LICENCE
    citation = CITATION
    homepage = HOMEPAGE
    task: int = field(default=1, metadata=opt("1: translations of one caption; 2: five independent captions."))
    split: str = field(
        default="test_2016",
        metadata=opt("Split(s), comma-separated: train, val, test_2016 (test_2016_flickr), test_2017_flickr, ..."),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_images(self.task, parse_splits(self.task, self.split), bool(self.image_dirs))

    def records(self) -> Iterator[EvalRecord]:
        return parse_multi30k(
            self.local_inputs(), self.task, self.split, self.lang, bool(self.image_dirs), self.skipped, self.repaired
        )

    @classmethod
    def limitations(cls) -> list[str]:
        return [LICENCE_NOTE, "Flickr8k photos reappear in Flickr30k: decontaminate Flickr8k builds."]
