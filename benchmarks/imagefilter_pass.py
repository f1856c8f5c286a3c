"""The image filters' embedding pass against a plain loop, and pHash throughput.

Writes N drawn 256x256 JPEG samples into shards, then embeds images and captions of the same shards
with the same model and batch size two ways, in the same run:

- plain loop: one process; PIL decode, the model's own processor (AutoImageProcessor), forward per batch;
- capbuild: `embed_shards` (loader workers decode from the tar stream and resize on the tensor; it
  also computes each image's pHash and writes embeddings/*.parquet).

The model is a random-weight CLIPModel; `--size tiny` (ViT 64 wide, 2 layers) measures the input
pipeline alone; `--size small` (ViT 384 wide, 6 layers, patch 32) keeps the
forward pass from hiding the input pipeline, as a GPU does; `--size b32` is ViT-B/32's shape.

    .venv/bin/python benchmarks/imagefilter_pass.py --images 512 --batch-size 64
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the procedural pictures of the tests

from capbuild.imagefilters.embed import PassOptions, embed_shards
from capbuild.imagefilters.hashing import phash_hex
from capbuild.images.shards import read_samples, write_samples
from capbuild.models.dual_encoder import load_dual_encoder
from tests.imagefilter_data import draw_picture
from tests.train.synthetic import save_tokenizer

SIZES = {
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2},
    "small": {"hidden_size": 384, "intermediate_size": 1536, "num_hidden_layers": 6, "num_attention_heads": 6},
    "b32": {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12},
}


def save_model(folder: Path, size: str) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    save_tokenizer(folder)
    config = CLIPConfig(
        text_config={"vocab_size": 200, "hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                     "num_attention_heads": 4, "max_position_embeddings": 77, "eos_token_id": 3},
        vision_config={"image_size": 224, "patch_size": 32, **SIZES[size]},
        projection_dim=512,
    )  # fmt: skip
    CLIPModel(config).save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size=224).save_pretrained(folder)
    return folder


def write_shards(folder: Path, count: int, per_shard: int) -> list[Path]:
    folder.mkdir(parents=True)
    shards = []
    for first in range(0, count, per_shard):
        samples = []
        for index in range(first, min(first + per_shard, count)):
            buffer = io.BytesIO()
            draw_picture(index).resize((256, 256), Image.Resampling.BICUBIC).save(buffer, format="JPEG", quality=90)
            meta = {"caption": f"picture {index}", "caption_orig": f"picture {index}"}
            samples.append(
                (
                    f"k{index:07d}",
                    {"jpg": buffer.getvalue(), "txt": f"picture {index}".encode(), "json": json.dumps(meta).encode()},
                )
            )
        shards.append(folder / f"{len(shards):05d}.tar")
        write_samples(samples, shards[-1])
    return shards


@torch.no_grad()
def plain_loop(model_dir: Path, shards: list[Path], batch_size: int) -> int:
    from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

    model = CLIPModel.from_pretrained(model_dir).eval()
    processor, tokenizer = AutoImageProcessor.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    done = 0

    def flush(images: list[Image.Image], captions: list[str]) -> None:
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        F.normalize(model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        tokens = tokenizer(captions, padding=True, truncation=True, max_length=77, return_tensors="pt")
        F.normalize(
            model.get_text_features(
                input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
            ).pooler_output,
            dim=-1,
        )

    images, captions = [], []
    for shard in shards:
        for _, fields in read_samples(shard):
            images.append(Image.open(io.BytesIO(fields["jpg"])).convert("RGB"))
            captions.append(fields["txt"].decode())
            if len(images) == batch_size:
                flush(images, captions)
                done += len(images)
                images, captions = [], []
    if images:
        flush(images, captions)
        done += len(images)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--per-shard", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shards = write_shards(root / "shards", args.images, args.per_shard)
        model_dir = save_model(root / "model", args.size)
        rows = []
        started = time.perf_counter()
        count = plain_loop(model_dir, shards, args.batch_size)
        plain = time.perf_counter() - started
        rows.append(("plain loop (PIL decode, processor, forward)", plain, count))
        encoder = load_dual_encoder(str(model_dir), device="cpu")
        for workers in args.workers:
            started = time.perf_counter()
            embed_shards(shards, root / f"emb-{workers}", [encoder], False, PassOptions(args.batch_size, workers))
            rows.append(
                (f"capbuild embed_shards, {workers} loader worker(s) (+ pHash)", time.perf_counter() - started, count)
            )
        images = [Image.open(io.BytesIO(f["jpg"])).convert("RGB") for s in shards for _, f in read_samples(s)]
        started = time.perf_counter()
        for image in images:
            phash_hex(image)
        hashing = time.perf_counter() - started
    threads, cpus = torch.get_num_threads(), os.cpu_count()
    print(f"{args.images} images 256x256, batch {args.batch_size}, model {args.size}, threads {threads}, cpus {cpus}")
    print("| run | seconds | images/s | vs plain loop |\n|---|---:|---:|---:|")
    for name, seconds, count in rows:
        print(f"| {name} | {seconds:.1f} | {count / seconds:,.0f} | {plain / seconds:.2f}x |")
    print(f"\npHash of decoded 256x256 images: {len(images) / hashing:,.0f} images/s ({len(images)} images, one core)")


if __name__ == "__main__":
    main()
