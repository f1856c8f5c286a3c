"""Training throughput of `capbuild train`: samples/s for ViT-B/32 + BERT-base sizes (random weights)
at batch 256, bf16 autocast against fp32, with the GPU's utilisation sampled by nvidia-smi.

    .venv/bin/python benchmarks/train_throughput.py                 # on a GPU machine
    .venv/bin/python benchmarks/train_throughput.py --tiny --steps 6 --batch-size 16   # a CPU check

Synthetic 256x256 shards are written to a temporary folder; the first 10 steps (start-up) are not counted.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "train"))
from synthetic import save_tokenizer
from train_loader import make_images, write_shards

from capbuild.train.config import TrainConfig
from capbuild.train.trainer import METRICS_NAME, train

WARMUP_STEPS = 10


def save_towers(root: Path, tiny: bool) -> tuple[Path, Path]:
    """Random ViT-B/32 and BERT-base (or tiny ones), as local checkpoints."""
    from transformers import BertConfig, BertModel, ViTConfig, ViTImageProcessor, ViTModel

    size = (
        {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128} if tiny else {}
    )
    ViTModel(ViTConfig(image_size=224, patch_size=32, **size)).save_pretrained(root / "vit")
    ViTImageProcessor().save_pretrained(root / "vit")
    save_tokenizer(root / "bert")
    BertModel(BertConfig(vocab_size=200, **size)).save_pretrained(root / "bert")
    return root / "vit", root / "bert"


class GpuSampler(threading.Thread):
    """Samples nvidia-smi's utilisation.gpu every half second while training runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "--id=0"]
            output = subprocess.run(query, capture_output=True, text=True, check=False).stdout.strip()
            if output:
                self.samples.append(float(output))


def measure(root: Path, towers: tuple[Path, Path], shards: Path, precision: str, args: argparse.Namespace) -> dict:
    out = root / f"run-{precision}"
    shutil.rmtree(out, ignore_errors=True)
    config = TrainConfig(
        data=[str(shards)],
        vision=str(towers[0]),
        text=str(towers[1]),
        out=out,
        steps=args.steps,
        batch_size=args.batch_size,
        workers=args.workers,
        precision=precision,
        log_every=1,
        save_every=10**9,
        warmup_steps=10,
        lr=1e-4,
    )
    sampler = GpuSampler() if torch.cuda.is_available() and shutil.which("nvidia-smi") else None
    if sampler:
        sampler.start()
    train(config, show_progress=False)
    if sampler:
        sampler.done.set()
    lines = [json.loads(line) for line in (out / METRICS_NAME).read_text().splitlines()]
    timed = [m for m in lines if m["step"] > min(WARMUP_STEPS, args.steps // 2)]
    utilisation = sum(sampler.samples) / len(sampler.samples) if sampler and sampler.samples else None
    return {"precision": precision, "samples_per_s": timed[-1]["samples_per_s"], "gpu_util": utilisation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--tiny", action="store_true", help="tiny towers (to check the script on CPU)")
    args = parser.parse_args()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        towers = save_towers(root / "towers", args.tiny)
        write_shards(make_images(args.images, root / "jpegs"), root / "shards", per_shard=512)
        results = [measure(root, towers, root / "shards", p, args) for p in ("bf16", "fp32")]
    towers_name = "tiny towers" if args.tiny else "ViT-B/32 + BERT-base"
    print(f"{device}: {towers_name}, batch {args.batch_size}, {args.workers} workers")
    for result in results:
        util = "n/a" if result["gpu_util"] is None else f"{result['gpu_util']:.0f}%"
        print(f"{result['precision']}: {result['samples_per_s']:8.1f} samples/s, GPU utilisation {util}")
    print(f"bf16 / fp32: {results[0]['samples_per_s'] / results[1]['samples_per_s']:.2f}")


if __name__ == "__main__":
    main()
