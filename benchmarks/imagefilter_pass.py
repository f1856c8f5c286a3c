"""The image filters' embedding pass against a plain loop, and pHash throughput.

Writes N drawn 256x256 JPEG samples into shards, then embeds images and captions of the same shards
with the same model and batch size two ways, in the same run:

- plain loop: one process; PIL decode, the model's own processor (AutoImageProcessor: transformers 5
  gives its torchvision backend), forward per batch;
- capbuild: `embed_shards` (loader workers read their samples by seeking in the tar, decode JPEGs with
  TorchCodec straight into tensors, resize them and, the model being on the CPU, embed them and their
  captions with their forked one-thread copies of it; it also computes each image's pHash and writes
  embeddings/*.parquet).

A third run, the plain loop that also computes each image's `imagehash.phash`, does the pass's work the
plain way; a fourth uses the processor's PIL backend (`backend="pil"`, the processor transformers 4 gave
by default). Last, on one core: capbuild's pHash (thumbnail of each decoded tensor, hashed in batches)
against `imagehash.phash` of each decoded PIL image, capbuild's decode against PIL's, and capbuild's
shard index against tarfile's. Each run's row also gives its CPU time an image (the process and its
loader workers) and how many cores it kept busy on average (CPU time / wall time).
Models and the plain loop's processor are loaded before the clocks start, and every run first passes one
shard untimed: what a process pays once (pyarrow importing pandas on its first array, 0.4-0.6 s of CPU;
TorchCodec's library; PIL's plugins; oneDNN's kernels for the plain loop's shapes) stays out of the
figures, which are the images/s of a long pass. `--cold` leaves the warm-up out. The model is a random-weight
CLIPModel: `--size tiny` (both towers 64 wide, 2 layers) measures the input pipeline alone; `--size
small` (ViT 384 wide, 6 layers, patch 32) is one where the forward pass is the cost, as for a real model
on a CPU; `--size b32` is ViT-B/32's shape. `--rounds N` interleaves N rounds of every run and prints
medians (this machine's noise is larger than one run's differences).

    .venv/bin/python benchmarks/imagefilter_pass.py --images 8192 --batch-size 64 --size tiny --rounds 5
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import imagehash
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.v2 import functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the procedural pictures of the tests

from capbuild.imagefilters.embed import WRITE_OPTIONS, PassOptions, embed_shards, index_shards
from capbuild.imagefilters.hashing import phash_hexes, phash_thumbnail
from capbuild.images.decode import decode_rgb
from capbuild.images.shards import read_samples, sample_index, write_samples
from capbuild.models.dual_encoder import DualEncoder, load_dual_encoder
from tests.imagefilter_data import draw_picture
from tests.train.synthetic import save_tokenizer


def tower(width: int, layers: int, heads: int) -> dict[str, int]:
    return {"hidden_size": width, "intermediate_size": 4 * width, "num_hidden_layers": layers,
            "num_attention_heads": heads}  # fmt: skip


# (vision tower, text tower); tiny keeps both towers small so that the input pipeline is what is timed.
SIZES = {
    "tiny": (tower(64, 2, 2), tower(64, 2, 2)),
    "small": (tower(384, 6, 6), tower(256, 4, 4)),
    "b32": (tower(768, 12, 12), tower(512, 12, 8)),
}


def save_model(folder: Path, size: str) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    save_tokenizer(folder)
    vision, text = SIZES[size]
    config = CLIPConfig(
        text_config={"vocab_size": 200, "max_position_embeddings": 77, "eos_token_id": 3, **text},
        vision_config={"image_size": 224, "patch_size": 32, **vision},
        projection_dim=512,
    )
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


class PlainLoop:
    """One process: PIL decode, the model's own processor, forward per batch (loaded once, untimed);
    `backend` picks the processor's ("pil" or transformers' default)."""

    def __init__(self, model_dir: Path, backend: str | None = None) -> None:
        from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

        self.model = CLIPModel.from_pretrained(model_dir).eval()
        self.processor = AutoImageProcessor.from_pretrained(model_dir, **({"backend": backend} if backend else {}))
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def _flush(self, images: list[Image.Image], captions: list[str]) -> None:
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        F.normalize(self.model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
        tokens = self.tokenizer(captions, padding=True, truncation=True, max_length=77, return_tensors="pt")
        features = self.model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        F.normalize(features.pooler_output, dim=-1)

    @torch.no_grad()
    def run(self, shards: list[Path], batch_size: int, hash_images: bool = False) -> int:
        done = 0
        images, captions = [], []
        for shard in shards:
            for _, fields in read_samples(shard):
                images.append(Image.open(io.BytesIO(fields["jpg"])).convert("RGB"))
                if hash_images:
                    str(imagehash.phash(images[-1]))
                captions.append(fields["txt"].decode())
                if len(images) == batch_size:
                    self._flush(images, captions)
                    done += len(images)
                    images, captions = [], []
        if images:
            self._flush(images, captions)
            done += len(images)
        return done


def timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pass's loader workers are joined)."""
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def timed_with_cpu(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run."""
    cpu = cpu_seconds()
    wall = timed(run)
    return wall, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--per-shard", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=1, help="rounds of every run, interleaved; medians shown")
    parser.add_argument("--cold", action="store_true", help="no untimed warm-up: the first round pays first uses")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shards = write_shards(root / "shards", args.images, args.per_shard)
        model_dir = save_model(root / "model", args.size)
        plain, encoder = PlainLoop(model_dir), load_dual_encoder(str(model_dir), device="cpu")
        plain_pil = PlainLoop(model_dir, backend="pil")
        # Each run takes the shards to pass and a tag naming its output.
        runs: dict[str, Callable[[list[Path], str], object]] = {
            "plain loop (PIL decode, processor, forward)": lambda part, _: plain.run(part, args.batch_size),
            "plain loop + pHash of each image": lambda part, _: plain.run(part, args.batch_size, hash_images=True),
            "plain loop, the processor's PIL backend": lambda part, _: plain_pil.run(part, args.batch_size),
        }
        for workers in args.workers:
            options = PassOptions(args.batch_size, workers)
            runs[f"capbuild embed_shards, {workers} loader worker(s) (+ pHash)"] = lambda part, tag, o=options: (
                capbuild_pass(part, root / f"emb-{o.workers}-{tag}", encoder, o)
            )
        if not args.cold:
            for run in runs.values():
                run(shards[:1], "warm-up")
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for number in range(args.rounds):
            for name, run in runs.items():
                wall, used = timed_with_cpu(lambda r=run, n=number: r(shards, str(n)))
                seconds[name].append(wall)
                cpu[name].append(used)
        torch.set_num_threads(1)
        encoded = [f["jpg"] for s in shards for _, f in read_samples(s)]
        each(decode_rgb, encoded[:8])  # TorchCodec loads its library on first use: not timed
        pil_decode = timed(lambda: each(pil_to_tensor, encoded))
        tensor_decode = timed(lambda: each(decode_rgb, encoded))
        images, tensors = [Image.open(io.BytesIO(d)).convert("RGB") for d in encoded], [decode_rgb(d) for d in encoded]
        batches = [tensors[i : i + args.batch_size] for i in range(0, len(tensors), args.batch_size)]
        hashing = timed(lambda: [phash_hexes([phash_thumbnail(t) for t in batch]) for batch in batches])
        imagehash_hashing = timed(lambda: [str(imagehash.phash(image)) for image in images])
        indexing = timed(lambda: [sample_index(shard) for shard in shards])
        embeddings = pq.read_table(root / f"emb-{args.workers[0]}-0" / "00000.parquet")  # as the pass wrote it
        writing = timed(lambda: [pq.write_table(embeddings, root / "w.parquet", **WRITE_OPTIONS) for _ in range(20)])
        default_writing = timed(lambda: [pq.write_table(embeddings, root / "w.parquet") for _ in range(20)])
        tarfile_indexing = timed(lambda: [tarfile_members(shard) for shard in shards])
        torch.set_num_threads(threads)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    baseline = next(iter(medians.values()))
    print(
        f"{args.images} images 256x256, batch {args.batch_size}, model {args.size}, torch threads {threads}, "
        f"cpus {os.cpu_count()}, median of {args.rounds} interleaved round(s), "
        f"{'cold' if args.cold else 'after a warm-up of one shard'}"
    )
    print(
        "| run | seconds | images/s | vs plain loop | CPU ms an image | cores busy | every round (s) |\n"
        "|---|---:|---:|---:|---:|---:|---|"
    )
    for name, median in medians.items():
        rounds = ", ".join(f"{value:.2f}" for value in seconds[name])
        used = statistics.median(cpu[name])
        print(
            f"| {name} | {median:.2f} | {args.images / median:,.0f} | {baseline / median:.2f}x "
            f"| {1000 * used / args.images:.2f} | {used / median:.2f} | {rounds} |"
        )
    print(
        f"\nOne core, 256x256 JPEGs. pHash of decoded images: capbuild's {len(images) / hashing:,.0f} images/s, "
        f"imagehash.phash {len(images) / imagehash_hashing:,.0f} images/s ({imagehash_hashing / hashing:.2f}x). "
        f"Decoding into a tensor: capbuild's decode_rgb {len(images) / tensor_decode:,.0f} images/s, PIL and "
        f"pil_to_tensor {len(images) / pil_decode:,.0f} images/s ({pil_decode / tensor_decode:.2f}x). "
        f"Indexing the shards: capbuild's sample_index {1000 * indexing:.0f} ms, tarfile's getmembers "
        f"{1000 * tarfile_indexing:.0f} ms ({tarfile_indexing / indexing:.2f}x). Writing a shard's embeddings "
        f"file: capbuild's {1000 * writing / 20:.1f} ms, pyarrow's defaults {1000 * default_writing / 20:.1f} ms "
        f"({default_writing / writing:.2f}x)"
    )


def capbuild_pass(shards: list[Path], folder: Path, encoder: DualEncoder, options: PassOptions) -> None:
    """The pass as the stage runs it: index the shards, then embed them into `folder`."""
    embed_shards(index_shards(shards), folder, [encoder], False, options, show_progress=False)


def pil_to_tensor(data: bytes) -> torch.Tensor:
    """What the pass did before TorchCodec: PIL decode, then a copy into a tensor."""
    return TF.pil_to_tensor(Image.open(io.BytesIO(data)).convert("RGB"))


def tarfile_members(shard: Path) -> list[tuple[str, int, int]]:
    """A tar's index the obvious way: tarfile reads every header."""
    with tarfile.open(shard) as source:
        return [(member.name, member.offset_data, member.size) for member in source.getmembers() if member.isfile()]


def each(function: Callable[[bytes], object], items: list[bytes]) -> None:
    """Call `function` on every item, keeping no result (as a loader worker does)."""
    for item in items:
        function(item)


if __name__ == "__main__":
    main()
