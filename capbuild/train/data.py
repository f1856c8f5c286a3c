"""WebDataset loaders over capbuild shards: shard resampling, node/worker splitting, a random
caption per step, clip-italian's augmentation and tokenisation inside the loader workers."""

from __future__ import annotations

import glob
import json
import os
import random
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import braceexpand
import torch
import webdataset as wds
from torchvision.transforms import InterpolationMode, v2

from capbuild.errors import ConfigError, InputError
from capbuild.layout import MANIFEST, BuildLayout

# Tokenizers share a thread pool that deadlocks in forked loader workers; the workers are the parallelism.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

IMAGE_FIELDS = ("jpg", "jpeg", "png", "webp")
TEXT_FIELDS = ("txt", "json")
GREY_FILL = 127  # what geometric augmentation fills uncovered pixels with (clip-italian's choice)


def expand_shards(pattern: str) -> list[str]:
    """Shard paths of one --data pattern: brace ranges ('{00000..00099}'), globs, a folder of tars, or a
    build folder (its shards)."""
    urls: list[str] = []
    for item in braceexpand.braceexpand(pattern):
        if "://" in item:
            urls.append(item)
        elif Path(item).is_dir():
            folder = BuildLayout(Path(item)).shards if Path(item, MANIFEST).is_file() else Path(item)
            urls.extend(sorted(str(p) for p in folder.glob("*.tar")))
        elif any(ch in item for ch in "*?["):
            urls.extend(sorted(glob.glob(item)))
        else:
            urls.append(item)
    missing = [u for u in urls if "://" not in u and not Path(u).is_file()]
    if not urls or missing:
        shown = ", ".join(missing[:3]) or pattern
        raise InputError(f"no shard found for --data {pattern!r} ({shown}); check the path and the {{a..b}} range")
    return urls


def count_samples(urls: list[str]) -> int:
    """Samples in the shards: from sizes.json beside them (capbuild and img2dataset write it), else by listing."""
    total = 0
    sizes_cache: dict[Path, dict[str, int]] = {}
    for url in urls:
        if "://" in url:
            raise ConfigError(f"--epochs counts samples of local shards only ({url}): give --steps instead")
        path = Path(url)
        sizes_path = path.parent / "sizes.json"
        if sizes_path not in sizes_cache:
            sizes_cache[sizes_path] = json.loads(sizes_path.read_text()) if sizes_path.is_file() else {}
        size = sizes_cache[sizes_path].get(path.name)
        if size is None:
            with tarfile.open(path) as tar:
                size = len({m.name.split(".", 1)[0] for m in tar.getmembers() if m.isfile()})
        total += int(size)
    return total


@dataclass(frozen=True)
class ImageGeometry:
    """What the vision tower expects: square side and per-channel normalisation."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def image_transform(geometry: ImageGeometry, augment: bool) -> Callable[[Any], torch.Tensor]:
    """PIL image -> normalised float tensor. With `augment`, clip-italian's recipe: random affine and
    perspective, occasional equalisation, brightness/contrast/saturation jitter with a small hue shift.

    The augmentation runs on the PIL image (several times faster there than on uint8 tensors); without
    it, the resize runs on the tensor (faster than PIL's)."""
    resize = [
        v2.Resize(geometry.size, interpolation=InterpolationMode.BICUBIC, antialias=True),
        v2.CenterCrop(geometry.size),
    ]
    augmentation = [
        v2.RandomAffine(degrees=15, translate=(0.1, 0.1), scale=(0.8, 1.2), shear=(-15, 15, -15, 15), fill=GREY_FILL),
        v2.RandomPerspective(distortion_scale=0.3, p=0.3, fill=GREY_FILL),
        v2.RandomEqualize(p=0.2),
        v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
    ]
    to_float = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(geometry.mean), list(geometry.std))]
    if augment:
        return v2.Compose([*resize, *augmentation, v2.ToImage(), *to_float])
    return v2.Compose([v2.ToImage(), *resize, *to_float])


def is_complete(sample: dict[str, Any]) -> bool:
    """A sample with an image and a caption. Skips webdataset's end-of-shard `{}` (0.2.96 and later)."""
    return any(f in sample for f in IMAGE_FIELDS) and any(f in sample for f in TEXT_FIELDS)


def sample_texts(sample: dict[str, Any]) -> tuple[str, list[str], str | None]:
    """(caption, all captions of the image, original caption before translation or None)."""
    meta = sample.get("json") or {}
    caption = sample.get("txt") or meta.get("caption") or ""
    captions = [c for c in meta.get("captions") or [] if isinstance(c, str) and c.strip()] or [caption]
    orig = meta.get("caption_orig")
    lang, lang_orig = meta.get("lang"), meta.get("lang_orig")
    translated = lang != lang_orig if lang and lang_orig else orig not in (None, caption)
    return caption, captions, (orig if orig and translated else None)


def _image(sample: dict[str, Any]) -> Any:
    return next(sample[f] for f in IMAGE_FIELDS if f in sample)


class TrainExample:
    """Decoded sample -> training example: transformed image, a random caption of `captions`."""

    def __init__(self, transform: Callable[[Any], torch.Tensor]) -> None:
        self.transform = transform

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        caption, captions, orig = sample_texts(sample)
        return {
            "pixel_values": self.transform(_image(sample)),
            "text": random.choice(captions),
            "caption": caption,
            "caption_orig": orig,
        }


class TrainCollate:
    """Batches examples and tokenises their texts (runs in the loader workers)."""

    def __init__(self, tokenizer: Any, max_length: int, teacher_tokenizer: Any | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.teacher_tokenizer = teacher_tokenizer

    def _tokens(self, tokenizer: Any, texts: list[str]) -> dict[str, torch.Tensor]:
        encoded = tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch: dict[str, Any] = {
            "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
            "text": self._tokens(self.tokenizer, [e["text"] for e in examples]),
        }
        if self.teacher_tokenizer is not None:
            batch["distill_text"] = self._tokens(self.tokenizer, [e["caption"] for e in examples])
            batch["teacher_text"] = self._tokens(self.teacher_tokenizer, [e["caption_orig"] or "" for e in examples])
            batch["distill_mask"] = torch.tensor([e["caption_orig"] is not None for e in examples])
        return batch


def _sample_stages(shuffle_buffer: int, example: Callable[[dict[str, Any]], Any]) -> list[Any]:
    return [
        wds.tarfile_to_samples(handler=wds.warn_and_continue),
        wds.select(is_complete),
        wds.shuffle(shuffle_buffer, initial=min(shuffle_buffer, 100)),
        wds.decode("pil", handler=wds.warn_and_continue),
        wds.map(example, handler=wds.warn_and_continue),
    ]


def source_pipeline(urls: list[str], *, resample: bool, seed: int, shuffle_buffer: int, example: Any) -> Any:
    """An endless stream of examples from one --data pattern.

    resample: every worker of every rank draws shards at random with replacement (open_clip's default
    for multi-node runs: no rank runs dry). Otherwise shards are shuffled each epoch, split by node then
    by worker, and the stream repeats epoch after epoch.
    """
    if resample:
        shards = [wds.ResampledShards(urls, worker_seed=_ShardSeed(seed), deterministic=True)]
    else:
        shards = [
            wds.SimpleShardList(urls),
            wds.detshuffle(len(urls), seed=seed),
            wds.split_by_node,
            wds.split_by_worker,
        ]
    pipeline = wds.DataPipeline(*shards, *_sample_stages(shuffle_buffer, example))
    return pipeline if resample else pipeline.repeat()


class _Iterate:
    """A pipeline as the first stage of another (webdataset < 0.2.96 cannot nest DataPipelines directly)."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def __call__(self) -> Iterator[Any]:
        return iter(self.source)


class _ShardSeed:
    """Shard-draw seed of a worker: the run's seed and webdataset's rank/worker seed (the `seed`
    argument of ResampledShards only exists from webdataset 0.2.96 on)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __call__(self) -> int:
        return self.seed * 1_000_003 + wds.utils.pytorch_worker_seed()


class _WorkerSeed:
    """Seeds `random` (caption choice, mixing) and torch (augmentation) differently in every worker of every rank."""

    def __init__(self, seed: int, rank: int) -> None:
        self.seed = seed
        self.rank = rank

    def __call__(self, worker_id: int) -> None:
        value = hash((self.seed, self.rank, worker_id)) % 2**31
        random.seed(value)
        torch.manual_seed(value)


@dataclass
class LoaderOptions:
    """How a training loader reads: per-rank batch size, workers, seed (offset by the resumed step)."""

    batch_size: int
    workers: int
    seed: int
    resample: bool = True
    shuffle_buffer: int = 1000
    weights: tuple[float, ...] = ()


def train_loader(
    sources: list[list[str]], transform: Callable[[Any], torch.Tensor], collate: TrainCollate, options: LoaderOptions
) -> Iterator[dict[str, Any]]:
    """Endless batches for this rank: each --data source a pipeline, mixed by `weights`, then batched."""
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    workers = options.workers
    if not options.resample:
        fewest = min(len(urls) for urls in sources) // world
        if fewest == 0:
            raise ConfigError(f"{world} ranks but a --data source has fewer shards: drop --no-resample")
        workers = min(workers, fewest)
    example = TrainExample(transform)
    pipelines = [
        source_pipeline(
            urls,
            resample=options.resample,
            seed=options.seed + i,
            shuffle_buffer=options.shuffle_buffer,
            example=example,
        )
        for i, urls in enumerate(sources)
    ]
    mixed = pipelines[0] if len(pipelines) == 1 else wds.RandomMix(pipelines, probs=list(options.weights) or None)
    batches = wds.DataPipeline(_Iterate(mixed), wds.batched(options.batch_size, collation_fn=collate, partial=False))
    if workers == 0:
        _WorkerSeed(options.seed, rank)(0)
        yield from batches
        return
    loader = wds.WebLoader(
        batches,
        batch_size=None,
        num_workers=workers,
        worker_init_fn=_WorkerSeed(options.seed, rank),
        persistent_workers=True,
    )
    yield from loader


class EvalExample:
    """Decoded sample -> evaluation example: plain-resized image, every caption, optional class label."""

    def __init__(self, transform: Callable[[Any], torch.Tensor]) -> None:
        self.transform = transform

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        _, captions, _ = sample_texts(sample)
        meta = sample.get("json") or {}
        label = meta.get("label", sample.get("cls"))
        return {
            "pixel_values": self.transform(_image(sample)),
            "captions": captions,
            "label": label,
            "key": sample["__key__"],
        }


def eval_collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
        "captions": [e["captions"] for e in examples],
        "label": [e["label"] for e in examples],
        "key": [e["key"] for e in examples],
    }


def eval_batches(
    urls: list[str],
    transform: Callable[[Any], torch.Tensor],
    batch_size: int,
    workers: int,
    only: frozenset[str] | None = None,
) -> Iterator[dict[str, Any]]:
    """One pass over the shards, every sample once (order across workers may vary); with `only`,
    just the samples of those keys, the others skipped before their image is decoded."""
    wanted = [wds.select(_KeyIn(only))] if only is not None else []
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(urls),
        wds.split_by_worker,
        wds.tarfile_to_samples(handler=wds.warn_and_continue),
        wds.select(is_complete),
        *wanted,
        wds.decode("pil", handler=wds.warn_and_continue),
        wds.map(EvalExample(transform), handler=wds.warn_and_continue),
        wds.batched(batch_size, collation_fn=eval_collate, partial=True),
    )
    workers = min(workers, len(urls))
    if workers == 0:
        yield from pipeline
        return
    yield from wds.WebLoader(pipeline, batch_size=None, num_workers=workers)


class _KeyIn:
    """Picklable predicate: the sample's key is one of `keys`."""

    def __init__(self, keys: frozenset[str]) -> None:
        self.keys = keys

    def __call__(self, sample: dict[str, Any]) -> bool:
        return sample["__key__"] in self.keys


def scan_samples(urls: list[str]) -> Iterator[dict[str, Any]]:
    """Every complete sample's key and KEY.json (parsed), in shard order, images left undecoded."""
    pipeline = wds.DataPipeline(
        wds.SimpleShardList(urls),
        wds.tarfile_to_samples(handler=wds.warn_and_continue),
        wds.select(is_complete),
    )
    for sample in pipeline:
        raw = sample.get("json")
        try:
            meta = json.loads(raw) if raw else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            meta = {}
        text = sample.get("txt")
        caption = text.decode("utf-8", errors="replace") if isinstance(text, bytes) else ""
        yield {"key": sample["__key__"], "json": meta if isinstance(meta, dict) else {}, "txt": caption}
