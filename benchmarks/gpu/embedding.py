"""Embedding-pass part: the image-filter stage's one pass over the shards (decode in loader workers,
embed images and captions) at ViT-B/32 + BERT-base size, random weights, images/s with the GPU's
utilisation; and the model alone on pixels already on the device, the ceiling the loader is held to.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from benchmarks.gpu.budget import Budget
from benchmarks.gpu.record import PartRecord
from benchmarks.gpu.shards import ensure_shards, sample_count
from benchmarks.gpu.system import GpuMonitor
from benchmarks.gpu.towers import save_dual_encoder, save_towers
from benchmarks.gpu.training import FULL, SMOKE

NAME = "embedding pass"
MODEL_ONLY = "model alone (pixels on the device)"


def load_encoder(model: Path) -> Any:
    from capbuild.models.dual_encoder import load_dual_encoder

    return load_dual_encoder(str(model))


def embedding_pass(shards: list[Path], folder: Path, encoder: Any, batch: int, workers: int) -> dict[str, int]:
    """The stage's pass over `shards`, embeddings written to `folder`; returns its counts."""
    from capbuild.imagefilters.embed import PassOptions, embed_shards, index_shards

    options = PassOptions(batch_size=batch, workers=workers)
    return embed_shards(index_shards(shards), folder, [encoder], False, options)


def run_part(record: PartRecord, budget: Budget, work: Path, tiny: bool) -> None:
    sizes = SMOKE if tiny else FULL
    started = time.monotonic()
    shards = [Path(s) for s in ensure_shards(work / "shards", sizes.images, sizes.side, 512, sizes.workers)]
    model = save_dual_encoder(work / "dual-encoder", save_towers(work / "towers", tiny), projection_dim=512)
    images = sample_count(work / "shards")
    record.setup(
        model="tiny ViT + BERT dual encoder" if tiny else "ViT-B/32 + BERT-base dual encoder, random weights",
        images=images,
        batch=sizes.batch,
        loader_workers=sizes.workers,
        setup_seconds=round(time.monotonic() - started, 1),
    )
    encoder = load_encoder(model)
    warmup, folder = work / "embeddings-warmup", work / "embeddings"
    for path in (warmup, folder):
        shutil.rmtree(path, ignore_errors=True)  # the pass reuses finished shards: start empty
    embedding_pass(shards[:1], warmup, encoder, sizes.batch, sizes.workers)
    with GpuMonitor() as monitor:
        begun = time.perf_counter()
        counts = embedding_pass(shards, folder, encoder, sizes.batch, sizes.workers)
        seconds = time.perf_counter() - begun
    record.figure(
        NAME,
        {
            "images": images,
            "seconds": round(seconds, 2),
            "images_per_s": round(images / seconds, 1),
            "counts": counts,
            "device": str(encoder.device),
            "dtype": str(encoder.dtype).removeprefix("torch."),
            **monitor.summary(),
        },
    )
    if budget.left() > 5:
        record.figure(MODEL_ONLY, model_only(encoder, sizes.batch, 5 if tiny else 30))


def model_only(encoder: Any, batch: int, batches: int) -> dict[str, Any]:
    """Images/s of encode_images alone on random pixels already on the device (after 3 untimed batches)."""
    import torch

    side = encoder.image_transform.size[0] if hasattr(encoder.image_transform, "size") else 224
    pixels = torch.randn(batch, 3, side, side, device=encoder.device)
    with GpuMonitor() as monitor:
        for _ in range(3):
            encoder.encode_images(pixels)
        monitor.mark()
        begun = time.perf_counter()
        for _ in range(batches):
            encoder.encode_images(pixels)  # returns on the CPU: each call waits for the GPU
        seconds = time.perf_counter() - begun
    images = batch * batches
    rate = round(images / seconds, 1)
    return {"images": images, "seconds": round(seconds, 2), "images_per_s": rate, **monitor.summary()}
