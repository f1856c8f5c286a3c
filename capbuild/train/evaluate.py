"""`capbuild eval`: retrieval across evaluation sets and languages, zero-shot classification, eval.json.

Each --data is one set (a build's test split, or shards). A set's images are embedded once, one
image per image_ref (XTD10 or XM3600 builds hold a row per image and language, all of the same
photo), and reused for every language; retrieval is then computed per (set, language) on that
language's rows: each caption finds its image among the images that have a caption in that
language, each image finds its captions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from torchvision.datasets import ImageFolder

from capbuild.errors import ConfigError
from capbuild.models.dual_encoder import DualEncoder, load_dual_encoder
from capbuild.train.config import EvalRequest
from capbuild.train.data import count_samples, eval_batches, sample_texts, scan_samples
from capbuild.train.metrics import ranking_metrics, topk_accuracy
from capbuild.train.sources import EvalData, eval_data, unique_names

DEFAULT_TEMPLATES = ("{}",)
UNDETERMINED = "und"  # ISO 639 code for samples whose KEY.json names no language
TABLE_METRICS = {
    "text_to_image": ("MRR@1", "MRR@5", "MRR@10", "R@1", "R@5", "R@10"),
    "image_to_text": ("R@1", "R@5", "R@10", "mAP"),
}
SHORT = {"text_to_image": "t2i", "image_to_text": "i2t"}
TABLE_WIDTH = 120  # the retrieval table's width with set names of about ten characters


@dataclass
class SetEmbeddings:
    """One set after its single image pass: an embedding per distinct image, and per usable sample
    its image's index, language and captions."""

    data: EvalData
    images: torch.Tensor
    rows: list[tuple[int, str, list[str]]]
    labels: list[Any]
    samples: int
    skipped: int | None


def embed_set(encoder: DualEncoder, data: EvalData, batch_size: int, workers: int, progress: Progress) -> SetEmbeddings:
    """Scan the set's KEY.json files, then decode and embed one sample per image_ref (the first)."""
    scanned = list(scan_samples(data.urls))
    first_key: dict[str, str] = {}
    for sample in scanned:
        first_key.setdefault(_image_id(sample), sample["key"])
    chosen = frozenset(first_key.values())
    embedded: dict[str, torch.Tensor] = {}
    labels: dict[str, Any] = {}
    task = progress.add_task(f"eval {data.name}: images", total=len(chosen))
    for batch in eval_batches(data.urls, encoder.image_transform, batch_size, workers, only=chosen):
        vectors = encoder.encode_images(batch["pixel_values"])
        for key, embedding, label in zip(batch["key"], vectors, batch["label"], strict=True):
            embedded[key] = embedding
            labels[key] = label
        progress.update(task, completed=len(embedded))
    order = [image for image, key in first_key.items() if key in embedded]
    if not order:
        raise ConfigError(f"--data {data.entry}: no sample with a readable image and a caption")
    index = {image: i for i, image in enumerate(order)}
    rows = []
    for sample in scanned:
        image = _image_id(sample)
        if image in index:
            _, captions, _ = sample_texts(sample)
            rows.append((index[image], sample["json"].get("lang") or UNDETERMINED, captions))
    local = all("://" not in url for url in data.urls)
    return SetEmbeddings(
        data=data,
        images=torch.stack([embedded[first_key[image]] for image in order]),
        rows=rows,
        labels=[labels[first_key[image]] for image in order],
        samples=len(scanned),
        # samples lacking an image or a caption, or whose image did not decode
        skipped=count_samples(data.urls) - len(rows) if local else None,
    )


def _image_id(sample: dict[str, Any]) -> str:
    return sample["json"].get("image_ref") or sample["key"]


def language_rows(embeddings: SetEmbeddings) -> dict[str, dict[int, list[str]]]:
    """lang -> image index -> its captions in that language (rows of the same image merged)."""
    by_lang: dict[str, dict[int, list[str]]] = {}
    for image, lang, captions in embeddings.rows:
        by_lang.setdefault(lang, {}).setdefault(image, []).extend(captions)
    return {lang: by_lang[lang] for lang in sorted(by_lang)}


def retrieval(encoder: DualEncoder, images: torch.Tensor, captions: dict[int, list[str]]) -> dict[str, Any]:
    """Each caption finds its image among `captions`' images; each image finds its captions among all captions."""
    order = sorted(captions)
    texts = [c for image in order for c in captions[image]]
    owner = np.repeat(np.arange(len(order)), [len(captions[image]) for image in order])
    scores = (encoder.encode_texts(texts) @ images[order].T).numpy()
    relevant = owner[:, None] == np.arange(len(order))[None, :]
    text_to_image = ranking_metrics(scores, relevant)
    text_to_image.pop("mAP")  # one relevant image per caption: mAP is the unbounded MRR
    return {
        "images": len(order),
        "captions": len(texts),
        "text_to_image": text_to_image,
        "image_to_text": ranking_metrics(scores.T, relevant.T),
    }


def mean_row(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """The unweighted mean of every metric over the (set, language) cells."""
    mean: dict[str, Any] = {"cells": len(cells)}
    for direction in ("text_to_image", "image_to_text"):
        names = cells[0][direction]
        mean[direction] = {m: float(np.mean([c[direction][m] for c in cells])) for m in names}
    return mean


def read_lines(path: Path) -> list[str]:
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line]


def class_embeddings(encoder: DualEncoder, classes: list[str], templates: list[str]) -> torch.Tensor:
    """One embedding per class: the normalised mean of its prompts' embeddings (CLIP's prompt ensemble)."""
    prompts = [
        template.replace("{}", name) if "{}" in template else f"{template} {name}"
        for name in classes
        for template in templates
    ]
    embeddings = encoder.encode_texts(prompts).view(len(classes), len(templates), -1).mean(dim=1)
    return F.normalize(embeddings, dim=-1)


def folder_embeddings(
    encoder: DualEncoder, folder: Path, batch_size: int, workers: int
) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """An ImageNet-style folder (one sub-folder per class, sorted): image embeddings, labels, folder names."""
    dataset = ImageFolder(str(folder), transform=encoder.image_transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    images, labels = [], []
    for pixel_values, label in loader:
        images.append(encoder.encode_images(pixel_values))
        labels.append(label.numpy())
    return torch.cat(images), np.concatenate(labels), dataset.classes


def zero_shot(encoder: DualEncoder, request: EvalRequest, sets: list[SetEmbeddings]) -> dict[str, Any]:
    if request.classes is None:
        raise ConfigError("zero-shot needs --classes (one class name per line, in the target language)")
    classes = read_lines(request.classes)
    templates = read_lines(request.templates) if request.templates else list(DEFAULT_TEMPLATES)
    if request.images is not None:
        images, labels, folders = folder_embeddings(encoder, request.images, request.batch_size, request.workers)
        if len(folders) != len(classes):
            raise ConfigError(
                f"{request.images} has {len(folders)} class folders but {request.classes} names {len(classes)}"
            )
    elif sets:
        shard_labels = [label for s in sets for label in s.labels]
        if any(label is None for label in shard_labels):
            raise ConfigError(
                "zero-shot on shards needs a 'label' in every KEY.json (or KEY.cls); or give --images FOLDER"
            )
        images = torch.cat([s.images for s in sets])
        labels = np.asarray([int(label) for label in shard_labels])
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


def evaluate(request: EvalRequest, show_progress: bool = False) -> dict[str, Any]:
    """Every evaluation the request names; the result is what eval.json holds."""
    if not request.data and request.images is None:
        raise ConfigError(
            "nothing to evaluate: give --data build folders or shards (retrieval) and/or --images with --classes "
            "(zero-shot)"
        )
    data = unique_names([eval_data(entry) for entry in request.data])  # fails on a bad --data before any model
    encoder = load_dual_encoder(str(request.model), request.device)
    result: dict[str, Any] = {
        "model": str(request.model),
        "model_name": encoder.name,
        "fingerprint": encoder.fingerprint,
    }
    sets: list[SetEmbeddings] = []
    with _progress(show_progress) as progress:
        for item in data:
            sets.append(embed_set(encoder, item, request.batch_size, request.workers, progress))
        if sets:
            result["sets"] = {s.data.name: _set_info(s) for s in sets}
            result["retrieval"] = {}
            for embeddings in sets:
                cells = language_rows(embeddings)
                task = progress.add_task(f"eval {embeddings.data.name}: languages", total=len(cells))
                result["retrieval"][embeddings.data.name] = {}
                for lang, captions in cells.items():
                    result["retrieval"][embeddings.data.name][lang] = retrieval(encoder, embeddings.images, captions)
                    progress.advance(task)
            result["mean"] = mean_row([cell for langs in result["retrieval"].values() for cell in langs.values()])
    if request.classes is not None or request.images is not None:
        result["zero_shot"] = zero_shot(encoder, request, sets)
    from capbuild.train.contamination import contamination_warnings

    result["warnings"] = contamination_warnings(request.model, data)
    return result


def _set_info(embeddings: SetEmbeddings) -> dict[str, Any]:
    info: dict[str, Any] = {
        "data": embeddings.data.entry,
        "build": str(embeddings.data.build) if embeddings.data.build else None,
        "shards": len(embeddings.data.urls),
        "samples": embeddings.samples,
        "images": len(embeddings.images),
    }
    if embeddings.skipped is not None:
        info["skipped"] = embeddings.skipped
    return info


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not enabled
    )


def write_result(result: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def result_cells(result: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(set, lang) -> cell of an eval.json, plus ("mean", "") for the mean row."""
    cells = {(name, lang): cell for name, langs in result.get("retrieval", {}).items() for lang, cell in langs.items()}
    if "mean" in result:
        cells[("mean", "")] = result["mean"]
    return cells


def retrieval_table(result: dict[str, Any]) -> Table:
    """One row per set and language, then the mean row."""
    table = Table(title=f"Retrieval: {result.get('model_name', result['model'])}", box=box.SIMPLE_HEAD)
    for column in ("set", "lang", "images", "captions"):
        table.add_column(column, justify="left" if column in ("set", "lang") else "right", no_wrap=True)
    for direction, metrics in TABLE_METRICS.items():
        for metric in metrics:
            table.add_column(f"{SHORT[direction]}\n{metric}", justify="right", no_wrap=True)
    for (name, lang), cell in result_cells(result).items():
        if name == "mean":
            table.add_section()
            counts = [f"{cell['cells']} cells", ""]
        else:
            counts = [str(cell["images"]), str(cell["captions"])]
        values = [f"{cell[d][m]:.3f}" for d, metrics in TABLE_METRICS.items() for m in metrics]
        table.add_row(name, lang, *counts, *values)
    return table


def compare_results(result: dict[str, Any], other: dict[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    """(set, lang) -> 'direction metric' -> this minus other, for the cells both results hold."""
    theirs = result_cells(other)
    diff: dict[tuple[str, str], dict[str, float]] = {}
    for cell_id, cell in result_cells(result).items():
        if cell_id not in theirs:
            continue
        diff[cell_id] = {
            f"{SHORT[d]} {m}": cell[d][m] - theirs[cell_id][d][m]
            for d, metrics in TABLE_METRICS.items()
            for m in metrics
            if m in theirs[cell_id].get(d, {})
        }
    return diff


def compare_table(result: dict[str, Any], other: dict[str, Any], other_name: str) -> Table:
    diff = compare_results(result, other)
    table = Table(title=f"This model minus {other_name}", box=box.SIMPLE_HEAD)
    table.add_column("set", no_wrap=True)
    table.add_column("lang", no_wrap=True)
    columns = [f"{SHORT[d]} {m}" for d, metrics in TABLE_METRICS.items() for m in metrics]
    for column in columns:
        table.add_column(column.replace(" ", "\n"), justify="right", no_wrap=True)
    for (name, lang), values in diff.items():
        if name == "mean":
            table.add_section()
        table.add_row(name, lang, *(f"{values[c]:+.3f}" if c in values else "" for c in columns))
    missing = set(result_cells(other)) ^ set(result_cells(result))
    if missing:
        table.caption = "in one result only: " + ", ".join(f"{n} {lang}".strip() for n, lang in sorted(missing))
    return table


def print_tables(result: dict[str, Any], console: Console) -> None:
    """The retrieval table (a row per set and language, then the mean), then zero-shot top-k, then warnings.
    Give `console` room for the table (TABLE_WIDTH columns): a narrower one wraps its lines."""
    if result.get("retrieval"):
        console.print(retrieval_table(result))
        skipped = {name: info["skipped"] for name, info in result["sets"].items() if info.get("skipped")}
        if skipped:
            console.print("samples skipped (no image or caption, or undecodable): " + json.dumps(skipped))
    if "zero_shot" in result:
        info = result["zero_shot"]
        columns = ["images", "classes", "templates", *(k for k in info if k.startswith("top"))]
        table = Table(title="Zero-shot classification")
        for name in columns:
            table.add_column(name, justify="right")
        table.add_row(*(f"{info[k]:.3f}" if k.startswith("top") else str(info[k]) for k in columns))
        console.print(table)
    for warning in result.get("warnings", []):
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
