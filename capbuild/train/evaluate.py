"""`capbuild eval`: text-to-image / image-to-text retrieval on shards and zero-shot classification,
in the seeds' layout, written to eval.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torchvision.datasets import ImageFolder

from capbuild.errors import ConfigError
from capbuild.train.config import EvalRequest
from capbuild.train.data import count_samples, eval_batches, expand_shards, image_transform
from capbuild.train.metrics import ranking_metrics, topk_accuracy
from capbuild.train.model import image_embeddings, image_geometry, load_run, text_embeddings

DEFAULT_TEMPLATES = ("{}",)


@dataclass
class ShardEmbeddings:
    images: torch.Tensor  # (images, dim), normalised
    captions: list[list[str]]
    labels: list[Any]


class Encoder:
    """Normalised embeddings of a loaded run, in batches, on the best device."""

    def __init__(self, path: Path, batch_size: int, max_length: int) -> None:
        self.model, self.processor = load_run(path)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.transform = image_transform(image_geometry(self.model, self.processor), augment=False)

    @torch.no_grad()
    def images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return F.normalize(image_embeddings(self.model, pixel_values.to(self.device)), dim=-1).float().cpu()

    @torch.no_grad()
    def texts(self, texts: list[str]) -> torch.Tensor:
        parts = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.processor.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            parts.append(F.normalize(text_embeddings(self.model, tokens), dim=-1).float().cpu())
        return torch.cat(parts)


def embed_shards(encoder: Encoder, urls: list[str], workers: int) -> ShardEmbeddings:
    images, captions, labels = [], [], []
    for batch in eval_batches(urls, encoder.transform, encoder.batch_size, workers):
        images.append(encoder.images(batch["pixel_values"]))
        captions.extend(batch["captions"])
        labels.extend(batch["label"])
    if not images:
        raise ConfigError(f"no sample with an image and a caption in {len(urls)} shard(s)")
    return ShardEmbeddings(torch.cat(images), captions, labels)


def retrieval(encoder: Encoder, shards: ShardEmbeddings) -> dict[str, dict[str, float]]:
    """Each caption finds its image among all images; each image finds its captions among all captions."""
    texts = [c for captions in shards.captions for c in captions]
    owner = np.repeat(np.arange(len(shards.captions)), [len(c) for c in shards.captions])
    text_emb = encoder.texts(texts)
    scores = (text_emb @ shards.images.T).numpy()
    relevant = owner[:, None] == np.arange(len(shards.captions))[None, :]
    text_to_image = ranking_metrics(scores, relevant)
    text_to_image.pop("mAP")  # one relevant image per caption: mAP is the unbounded MRR
    return {"text_to_image": text_to_image, "image_to_text": ranking_metrics(scores.T, relevant.T)}


def read_lines(path: Path) -> list[str]:
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def class_embeddings(encoder: Encoder, classes: list[str], templates: list[str]) -> torch.Tensor:
    """One embedding per class: the normalised mean of its prompts' embeddings (CLIP's prompt ensemble)."""
    prompts = [
        template.replace("{}", name) if "{}" in template else f"{template} {name}"
        for name in classes
        for template in templates
    ]
    embeddings = encoder.texts(prompts).view(len(classes), len(templates), -1).mean(dim=1)
    return F.normalize(embeddings, dim=-1)


def folder_embeddings(encoder: Encoder, folder: Path, workers: int) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """An ImageNet-style folder (one sub-folder per class, sorted): image embeddings, labels, folder names."""
    dataset = ImageFolder(str(folder), transform=encoder.transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=encoder.batch_size, num_workers=workers)
    images, labels = [], []
    for pixel_values, label in loader:
        images.append(encoder.images(pixel_values))
        labels.append(label.numpy())
    return torch.cat(images), np.concatenate(labels), dataset.classes


def zero_shot(encoder: Encoder, request: EvalRequest, shards: ShardEmbeddings | None) -> dict[str, Any]:
    if request.classes is None:
        raise ConfigError("zero-shot needs --classes (one class name per line, in the target language)")
    classes = read_lines(request.classes)
    templates = read_lines(request.templates) if request.templates else list(DEFAULT_TEMPLATES)
    if request.images is not None:
        images, labels, folders = folder_embeddings(encoder, request.images, request.workers)
        if len(folders) != len(classes):
            raise ConfigError(
                f"{request.images} has {len(folders)} class folders but {request.classes} names {len(classes)}"
            )
    elif shards is not None:
        if any(label is None for label in shards.labels):
            raise ConfigError(
                "zero-shot on shards needs a 'label' in every KEY.json (or KEY.cls); or give --images FOLDER"
            )
        images, labels = shards.images, np.asarray([int(label) for label in shards.labels])
    else:
        raise ConfigError("zero-shot needs --images FOLDER or labelled --data shards")
    if labels.max() >= len(classes):
        raise ConfigError(f"label {labels.max()} but only {len(classes)} classes in {request.classes}")
    scores = (images @ class_embeddings(encoder, classes, templates).T).numpy()
    return {
        "classes": len(classes),
        "templates": len(templates),
        "images": len(labels),
        **topk_accuracy(scores, labels),
    }


def evaluate(request: EvalRequest) -> dict[str, Any]:
    """Every evaluation the request names; the result is what eval.json holds."""
    if not request.data and request.images is None:
        raise ConfigError(
            "nothing to evaluate: give --data shards (retrieval) and/or --images with --classes (zero-shot)"
        )
    encoder = Encoder(request.model, request.batch_size, request.max_length)
    result: dict[str, Any] = {"model": str(request.model)}
    shards = None
    if request.data:
        urls = [url for pattern in request.data for url in expand_shards(pattern)]
        shards = embed_shards(encoder, urls, request.workers)
        result["retrieval"] = {
            "images": len(shards.captions),
            "captions": sum(len(c) for c in shards.captions),
            **retrieval(encoder, shards),
        }
        if all("://" not in url for url in urls):  # samples lacking an image or caption, or undecodable
            result["retrieval"]["skipped"] = count_samples(urls) - len(shards.captions)
    if request.classes is not None or request.images is not None:
        result["zero_shot"] = zero_shot(encoder, request, shards)
    return result


def write_result(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def print_tables(result: dict[str, Any], console: Console) -> None:
    """Retrieval as the seeds print it (a row per direction, MRR@k then Recall@k), then zero-shot top-k."""
    if "retrieval" in result:
        info = result["retrieval"]
        metrics = list(info["image_to_text"])
        skipped = f", {info['skipped']} samples skipped" if info.get("skipped") else ""
        table = Table(title=f"Retrieval ({info['images']} images, {info['captions']} captions{skipped})")
        table.add_column("direction")
        for name in metrics:
            table.add_column(name, justify="right")
        for direction in ("text_to_image", "image_to_text"):
            values = info[direction]
            table.add_row(direction.replace("_", " "), *(f"{values[m]:.3f}" if m in values else "" for m in metrics))
        console.print(table)
    if "zero_shot" in result:
        info = result["zero_shot"]
        columns = ["images", "classes", "templates", *(k for k in info if k.startswith("top"))]
        table = Table(title="Zero-shot classification")
        for name in columns:
            table.add_column(name, justify="right")
        table.add_row(*(f"{info[k]:.3f}" if k.startswith("top") else str(info[k]) for k in columns))
        console.print(table)
