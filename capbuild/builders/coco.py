"""MS-COCO captions: the official 2014/2017 JSON, translated files in that layout, Karpathy's splits."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from capbuild.builders.base import IMAGE_DIRS_OPTION, Builder, file_url, find_image, register, split_from_name
from capbuild.builders.image_ref import coco_ref
from capbuild.errors import ConfigError, InputError

KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}
SUBSET_PATTERN = re.compile(r"(train|val|test)(20\d\d)")


@dataclass
class _Image:
    source_id: str
    split: str
    file_names: list[str]
    url: str | None
    meta: dict[str, Any]
    captions: list[str] = field(default_factory=list)


@register
@dataclass
class CocoBuilder(Builder):
    """Reads COCO-layout caption files; `lang` is the language the captions are written in."""

    name = "coco"
    summary = "MS-COCO captions (2014/2017 JSON, translated files in that layout, Karpathy's split JSON)."
    example = "capbuild coco captions_train2017.json --images train2017/ --lang en --out coco-en/"
    licence = "cc-by-4.0"
    homepage = "https://cocodataset.org"
    citation = """@inproceedings{lin2014microsoft,
  title={Microsoft COCO: Common Objects in Context},
  author={Lin, Tsung-Yi and Maire, Michael and Belongie, Serge and Hays, James and Perona, Pietro and
          Ramanan, Deva and Doll{\\'a}r, Piotr and Zitnick, C. Lawrence},
  booktitle={European Conference on Computer Vision (ECCV)},
  pages={740--755},
  year={2014}
}"""
    image_dirs: list[Path] = field(default_factory=list, metadata=IMAGE_DIRS_OPTION)

    def rows(self) -> Iterator[dict[str, Any]]:
        images: dict[str, _Image] = {}
        karpathy_splits: dict[str, str] = {}
        karpathy_only: dict[str, _Image] = {}
        for path in self.local_inputs():
            data = _load_json(path)
            if _is_karpathy(data):
                for image in self._karpathy_images(data):
                    karpathy_splits[image.source_id] = image.split
                    karpathy_only[image.source_id] = image
            elif isinstance(data, dict) and "annotations" in data and "images" in data:
                self._read_captions_file(path, data, images)
            else:
                raise InputError(
                    f"{path}: not a COCO captions file (needs 'images' and 'annotations') "
                    "nor a Karpathy split file (needs images[].sentences)"
                )
        if not images:
            images = karpathy_only
        for image in images.values():
            if image.source_id in karpathy_splits:
                image.split = karpathy_splits[image.source_id]
            if not image.captions:
                self.skipped["image_without_captions"] += 1
                continue
            url = self._image_url(image)
            if url is None:
                self.skipped["no_image_url"] += 1
                continue
            yield self.make_row(
                source_id=image.source_id,
                split=image.split,
                image_url=url,
                image_ref=_coco_image_ref(image.source_id, image.file_names),
                captions=image.captions,
                meta=image.meta,
            )

    def _image_url(self, image: _Image) -> str | None:
        if self.image_dirs:
            return file_url(find_image(self.image_dirs, *image.file_names))
        return image.url

    def _read_captions_file(self, path: Path, data: dict[str, Any], images: dict[str, _Image]) -> None:
        default_split = split_from_name(path.name)
        subset = SUBSET_PATTERN.search(path.name)
        for entry in data["images"]:
            source_id = _id(entry.get("id"))
            if source_id is None or not entry.get("file_name"):
                self.skipped["image_without_id_or_file_name"] += 1
                continue
            file_name = entry["file_name"]
            subset_dir = subset.group(0) if subset else _subset_from_file_name(file_name)
            if source_id in images:
                continue
            images[source_id] = _Image(
                source_id=source_id,
                split=default_split,
                file_names=[file_name, f"{subset_dir}/{file_name}" if subset_dir else ""],
                url=entry.get("coco_url") or entry.get("url") or entry.get("flickr_url"),
                meta={
                    k: entry[k]
                    for k in ("file_name", "width", "height", "license", "flickr_url", "coco_url", "url")
                    if entry.get(k) is not None
                },
            )
        for annotation in data["annotations"]:
            image = images.get(_id(annotation.get("image_id")) or "")
            if image is None:
                self.skipped["caption_without_image"] += 1
                continue
            self._add_caption(image, annotation.get("caption"))

    def _karpathy_images(self, data: dict[str, Any]) -> Iterator[_Image]:
        for entry in data["images"]:
            source_id = _id(entry.get("cocoid", entry.get("imgid")))
            if source_id is None:
                self.skipped["image_without_id_or_file_name"] += 1
                continue
            filepath, filename = entry.get("filepath", ""), entry.get("filename", "")
            image = _Image(
                source_id=source_id,
                split=KARPATHY_SPLITS.get(entry.get("split", ""), entry.get("split") or "train"),
                file_names=[filename, f"{filepath}/{filename}" if filepath else ""],
                url=None,
                meta={"file_name": filename, "filepath": filepath},
            )
            for sentence in entry.get("sentences", []):
                self._add_caption(image, sentence.get("raw"))
            yield image

    def _add_caption(self, image: _Image, caption: Any) -> None:
        if not isinstance(caption, str) or not caption.strip():
            self.skipped["empty_caption"] += 1
            return
        image.captions.append(caption.strip())


def _load_json(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            return json.load(f)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not valid UTF-8 JSON ({err}); is this a COCO captions file?") from err


def _is_karpathy(data: Any) -> bool:
    images = data.get("images") if isinstance(data, dict) else None
    return bool(images) and "annotations" not in data and "sentences" in images[0]


def _id(value: Any) -> str | None:
    """COCO ids are ints in the official files and strings in some translated ones: one form."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return str(int(text)) if text.isdigit() else (text or None)


def _subset_from_file_name(file_name: str) -> str | None:
    match = SUBSET_PATTERN.search(file_name)
    return match.group(0) if match else None


def _coco_image_ref(source_id: str, file_names: list[str]) -> str | None:
    """coco:ID from the image id (official files, Karpathy's cocoid), else from the file name."""
    for value in (source_id, *(n for n in file_names if n)):
        try:
            return coco_ref(value)
        except ConfigError:
            continue
    return None
