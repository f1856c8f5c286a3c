"""Procedural capbuild shards for the training and embedding parts: noisy coloured shapes as JPEG
(the side capbuild's image stage stores, 256 px by default) with CC-style captions, KEY.jpg /
KEY.txt / KEY.json members and sizes.json, made on the spot and shared by the parts."""

from __future__ import annotations

import io
import json
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from benchmarks.gpu.captions import cc_style_captions

COLOURS = ((220, 30, 30), (30, 180, 60), (30, 60, 220), (240, 220, 40), (90, 90, 90), (250, 250, 250))
SIZES_NAME = "sizes.json"


def draw_jpeg(index: int, side: int) -> bytes:
    """One noisy image with an ellipse, the same for the same index."""
    from PIL import Image, ImageDraw

    rng = random.Random(index)
    image = Image.effect_noise((side, side), 40).convert("RGB")
    image = Image.blend(image, Image.new("RGB", (side, side), rng.choice(COLOURS)), 0.7)
    half = rng.randint(side // 6, side // 3)
    cx, cy = rng.randint(half, side - half), rng.randint(half, side - half)
    ImageDraw.Draw(image).ellipse((cx - half, cy - half, cx + half, cy + half), fill=rng.choice(COLOURS))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _jpegs(args: tuple[int, int, int]) -> list[bytes]:
    first, count, side = args
    return [draw_jpeg(first + i, side) for i in range(count)]


def sample_count(folder: Path) -> int:
    """Samples in a complete set of shards (from its sizes.json)."""
    return sum(json.loads((folder / SIZES_NAME).read_text()).values())


def ensure_shards(folder: Path, count: int, side: int, per_shard: int, workers: int) -> list[str]:
    """The tar paths of `count` samples in `folder`, written unless a complete set is already there."""
    import webdataset as wds

    sizes_path = folder / SIZES_NAME
    if sizes_path.is_file():
        return sorted(str(folder / name) for name in json.loads(sizes_path.read_text()))
    folder.mkdir(parents=True, exist_ok=True)
    captions = cc_style_captions(count, seed=1)
    jobs = [(first, min(per_shard, count - first), side) for first in range(0, count, per_shard)]
    sizes = {}
    with ProcessPoolExecutor(max(1, workers)) as pool:
        for (first, n, _), jpegs in zip(jobs, pool.map(_jpegs, jobs), strict=True):
            path = folder / f"{first // per_shard:05d}.tar"
            with wds.TarWriter(str(path)) as sink:
                for offset, jpeg in enumerate(jpegs):
                    caption = captions[first + offset]
                    meta = {"source": "procedural", "source_id": str(first + offset), "caption": caption,
                            "captions": [caption], "lang": "en", "width": side, "height": side}  # fmt: skip
                    sink.write(
                        {"__key__": f"p{first + offset:08d}", "jpg": jpeg, "txt": caption, "json": json.dumps(meta)}
                    )
            sizes[path.name] = n
    sizes_path.write_text(json.dumps(sizes))  # last: its presence means the set is complete
    return sorted(str(folder / name) for name in sizes)
