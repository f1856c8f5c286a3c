"""Loader throughput: capbuild's WebDataset loader over shards against a folder of the same JPEG files
read by a map-style torch Dataset, with the same augmentation, tokenisation, batch size and workers.

    .venv/bin/python benchmarks/train_loader.py --images 2048 --workers 1 2

Images are drawn procedurally (256x256 JPEG, as `capbuild ... --image-size 256` stores them) and
transformed to 224x224 (ViT-B/32's input). Prints one line per (augment, workers): the best of
--repeats interleaved runs of each loader.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
import webdataset as wds
from PIL import Image, ImageDraw
from transformers import AutoTokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "train"))
from synthetic import COLOURS, COMBINATIONS, captions_for, save_tokenizer

from capbuild.train.data import (
    ImageGeometry,
    LoaderOptions,
    TrainCollate,
    TrainExample,
    image_transform,
    train_loader,
)

SIDE = 256
GEOMETRY = ImageGeometry(size=224, mean=(0.481, 0.458, 0.408), std=(0.269, 0.261, 0.276))


def make_images(count: int, folder: Path) -> list[tuple[bytes, dict]]:
    """JPEG bytes and KEY.json of `count` noisy shape images; also written to folder/KEY.jpg + KEY.json."""
    rng = random.Random(0)
    folder.mkdir(parents=True)
    samples = []
    for index in range(count):
        shape, colour, background = COMBINATIONS[index % len(COMBINATIONS)]
        image = Image.effect_noise((SIDE, SIDE), 40).convert("RGB")
        image = Image.blend(image, Image.new("RGB", (SIDE, SIDE), COLOURS[background][1]), 0.7)
        pen = ImageDraw.Draw(image)
        half = rng.randint(40, 90)
        cx, cy = rng.randint(half, SIDE - half), rng.randint(half, SIDE - half)
        pen.ellipse((cx - half, cy - half, cx + half, cy + half), fill=COLOURS[colour][1])
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=95)
        captions, english = captions_for(shape, colour, background)
        meta = {"caption": captions[0], "captions": captions, "caption_orig": english, "lang": "it", "lang_orig": "en"}
        (folder / f"{index:07d}.jpg").write_bytes(buffer.getvalue())
        (folder / f"{index:07d}.json").write_text(json.dumps(meta))
        samples.append((buffer.getvalue(), meta))
    return samples


def write_shards(samples: list[tuple[bytes, dict]], folder: Path, per_shard: int) -> list[str]:
    folder.mkdir(parents=True)
    paths = []
    for first in range(0, len(samples), per_shard):
        path = folder / f"{len(paths):05d}.tar"
        with wds.TarWriter(str(path)) as sink:
            for index in range(first, min(first + per_shard, len(samples))):
                jpeg, meta = samples[index]
                sink.write({"__key__": f"{index:07d}", "jpg": jpeg, "txt": meta["caption"], "json": json.dumps(meta)})
        paths.append(str(path))
    return paths


class JpegFolder(torch.utils.data.Dataset):
    """The alternative: one JPEG (+ its JSON) per sample on disk, shuffled by the DataLoader."""

    def __init__(self, folder: Path, example: TrainExample) -> None:
        self.files = sorted(folder.glob("*.jpg"))
        self.example = example

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        with Image.open(path) as image:
            sample = {"jpg": image.convert("RGB"), "json": json.loads(path.with_suffix(".json").read_text())}
        return self.example(sample)


def forever(loader):
    while True:
        yield from loader


def rate(batches, count: int, batch_size: int) -> float:
    """Images/s over `count` batches after the first (worker start-up and first shard are not counted)."""
    next(batches)
    started = time.perf_counter()
    for _ in range(count):
        next(batches)
    return count * batch_size / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3, help="measurements per loader (the best is kept)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        samples = make_images(args.images, root / "jpegs")
        shards = write_shards(samples, root / "shards", per_shard=256)
        save_tokenizer(root / "tokenizer")
        collate = TrainCollate(AutoTokenizer.from_pretrained(root / "tokenizer"), 77)
        print(f"{args.images} images {SIDE}px -> {GEOMETRY.size}px, batch {args.batch_size}, timed {args.batches}")
        for augment in (True, False):
            transform = image_transform(GEOMETRY, augment)
            for workers in args.workers:
                shard_rates, folder_rates = [], []
                for _ in range(args.repeats):  # interleaved, best of each: the machine may be shared
                    options = LoaderOptions(batch_size=args.batch_size, workers=workers, seed=0, shuffle_buffer=500)
                    stream = train_loader([shards], transform, collate, options)
                    shard_rates.append(rate(stream, args.batches, args.batch_size))
                    stream.close()
                    folder = torch.utils.data.DataLoader(
                        JpegFolder(root / "jpegs", TrainExample(transform)),
                        batch_size=args.batch_size,
                        shuffle=True,
                        num_workers=workers,
                        collate_fn=collate,
                        drop_last=True,
                    )
                    folder_rates.append(rate(forever(folder), args.batches, args.batch_size))
                print(
                    f"augment={augment!s:5} workers={workers}: shards {max(shard_rates):7.1f} images/s, "
                    f"JPEG folder {max(folder_rates):7.1f} images/s, ratio {max(shard_rates) / max(folder_rates):.2f}"
                )


if __name__ == "__main__":
    main()
