"""Procedural pictures for the image filters' tests, and small builds of them.

30 distinct pictures (smooth random colour fields with a shape), then 5 exact copies under other
names, 5 resized and re-encoded copies and 5 crops of 80 %, all in the train split after the
originals, plus a val split of 10 more distinct pictures."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIDE = 96
DISTINCT = 30
VAL = 10
COPIES = range(0, 5)  # pictures copied byte for byte
RESIZED = range(5, 10)  # pictures resized to 72 px and re-encoded
CROPPED = range(10, 15)  # pictures cropped to their central 80 %


@dataclass(frozen=True)
class Picture:
    name: str
    picture: int  # which distinct picture it shows
    kind: str  # original, copy, resized, cropped
    split: str


def draw_picture(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    field = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
    image = Image.fromarray(field).resize((SIDE, SIDE), Image.Resampling.BICUBIC)
    pen = ImageDraw.Draw(image)
    x, y = rng.integers(10, SIDE - 40, 2)
    pen.ellipse((int(x), int(y), int(x) + 30, int(y) + 24), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image


def jpeg(image: Image.Image, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_pictures(folder: Path, seed_offset: int = 0) -> list[Picture]:
    """The pictures as JPEG files in `folder`, in the order the build lists them."""
    folder.mkdir(parents=True, exist_ok=True)
    pictures: list[Picture] = []
    originals = {}
    for index in range(DISTINCT + VAL):
        data = jpeg(draw_picture(seed_offset + index))
        originals[index] = data
        split = "train" if index < DISTINCT else "val"
        pictures.append(Picture(f"pic{index:02d}.jpg", index, "original", split))
        (folder / pictures[-1].name).write_bytes(data)
    for index in COPIES:
        pictures.append(Picture(f"copy{index:02d}.jpg", index, "copy", "train"))
        (folder / pictures[-1].name).write_bytes(originals[index])
    for index in RESIZED:
        small = Image.open(io.BytesIO(originals[index])).resize((72, 72), Image.Resampling.LANCZOS)
        pictures.append(Picture(f"resized{index:02d}.jpg", index, "resized", "train"))
        (folder / pictures[-1].name).write_bytes(jpeg(small, quality=80))
    for index in CROPPED:
        margin = SIDE // 10
        crop = Image.open(io.BytesIO(originals[index])).crop((margin, margin, SIDE - margin, SIDE - margin))
        pictures.append(Picture(f"crop{index:02d}.jpg", index, "cropped", "train"))
        (folder / pictures[-1].name).write_bytes(jpeg(crop))
    return pictures


def write_coco(folder: Path, pictures: list[Picture], first_id: int = 1) -> list[Path]:
    """COCO caption files (one per split) listing the pictures by file:// URL in order."""
    files = []
    for split in ("train", "val"):
        chosen = [(first_id + i, p) for i, p in enumerate(pictures) if p.split == split]
        if not chosen:
            continue
        images = [{"id": i, "file_name": p.name, "coco_url": (folder / p.name).as_uri()} for i, p in chosen]
        annotations = [{"id": i, "image_id": i, "caption": f"picture {p.picture} {p.kind}"} for i, p in chosen]
        path = folder / f"captions_{split}2014.json"
        path.write_text(json.dumps({"images": images, "annotations": annotations}))
        files.append(path)
    return files


def build(out: Path, captions: list[Path], shard_size: int = 16) -> dict:
    """A build of the caption files with its images (no image filter)."""
    from capbuild.build import BuildRequest, run_build
    from capbuild.builders.coco import CocoBuilder
    from capbuild.images.stage import ImageOptions

    options = ImageOptions(image_size=64, shard_size=shard_size, threads=4, per_host_rps=0)
    return run_build(BuildRequest(CocoBuilder(inputs=captions), out, images=options))
