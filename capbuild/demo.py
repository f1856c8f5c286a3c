"""Sample data that capbuild makes itself, so `capbuild demo` builds a dataset with no network."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw

if TYPE_CHECKING:
    from capbuild.build import BuildRequest

COLOURS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (240, 210, 40)}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = {"white": (250, 250, 250), "black": (15, 15, 15)}


def _draw(shape: str, colour: tuple[int, int, int], background: tuple[int, int, int], size: int = 160) -> Image.Image:
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    box = (size // 5, size // 5, size - size // 5, size - size // 5)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(size // 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=colour)
    return image


def write_sample_coco(folder: Path) -> tuple[Path, Path]:
    """Write 25 drawn images and a COCO-layout captions file with real-world quirks: mojibake, an
    image posted twice with the same captions, a one-word caption, an empty caption, an image
    missing on disk. Returns (captions file, image folder)."""
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    image_id = 0
    for shape in SHAPES:
        for colour_name, colour in COLOURS.items():
            for background_name, background in BACKGROUNDS.items():
                image_id += 1
                file_name = f"{image_id:012d}.jpg"
                _draw(shape, colour, background).save(images_dir / file_name, quality=90)
                images.append({"id": image_id, "file_name": file_name, "width": 160, "height": 160})
                for n, caption in enumerate(
                    (
                        f"a {colour_name} {shape} on a {background_name} background",
                        f"A {shape} painted {colour_name}, seen on {background_name}.",
                    )
                ):
                    annotations.append({"id": image_id * 10 + n, "image_id": image_id, "caption": caption})
    annotations[0]["caption"] += " at the caf\u00c3\u00a9"  # mojibake of "café", which clean repairs
    repost = {**images[0], "id": image_id + 1, "file_name": f"{image_id + 1:012d}.jpg"}
    (images_dir / repost["file_name"]).write_bytes((images_dir / images[0]["file_name"]).read_bytes())
    images.append(repost)
    annotations += [{**a, "id": a["id"] + 1000, "image_id": repost["id"]} for a in annotations[:2]]
    annotations[6]["caption"] = "shape"  # too short for len=3..
    annotations[8]["caption"] = "   "  # empty: the builder counts and skips it
    (images_dir / images[-2]["file_name"]).unlink()  # an image that is not on disk
    captions_file = folder / "captions_train2017.json"
    captions_file.write_text(
        json.dumps({"info": {"description": "capbuild demo"}, "images": images, "annotations": annotations}),
        encoding="utf-8",
    )
    return captions_file, images_dir


def demo_request(out: Path) -> BuildRequest:
    """The demo's build: the sample COCO files, two filters, small images and shards."""
    from capbuild.build import BuildRequest
    from capbuild.builders.coco import CocoBuilder
    from capbuild.images.options import ImageOptions
    from capbuild.stages.text.plan import make_plan

    captions_file, images_dir = write_sample_coco(out / "sample-input")
    return BuildRequest(
        builder=CocoBuilder(lang="en", inputs=[str(captions_file)], image_dirs=[images_dir]),
        out=out,
        plan=make_plan("en", ["len=3..30", "dedup"]),
        images=ImageOptions(image_size=64, shard_size=10, threads=4),
        overwrite=True,
    )
