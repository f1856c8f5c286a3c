"""The option groups build commands share, declared once: build, image, filter, translation, executor.

The filter and translation options are the fields of the text stage's `TextOptions`; the image options
the fields of `ImageOptions`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capbuild.cli.params import REQUIRED, field_parameters, field_values, parameter
from capbuild.errors import ConfigError
from capbuild.imagefilters.options import ImageFilterOptions, ImageFilterRequest
from capbuild.images.options import ImageOptions
from capbuild.stages.text.options import TextOptions

if TYPE_CHECKING:
    from capbuild.stages.text.executors.base import ExecutorOptions

INPUTS_HELP = "Input file, folder or glob: a local path or any fsspec URL (s3://, gs://, hf://, https://)."

BUILD_GROUP = [
    parameter("inputs", list[str] | None, None, ("--input", "-i"), f"{INPUTS_HELP} Repeatable, or as arguments."),
    parameter(
        "out",
        str,
        REQUIRED,
        ("--out", "-o"),
        "Build folder, local or any fsspec URL (s3://, gs://, hf://): created; resumed when it holds this build.",
    ),
    parameter("lang", str | None, None, ("--lang",), "Captions' language (ISO 639-1: it, ar; default: the source's)."),
    parameter(
        "filter",
        list[str] | None,
        None,
        ("--filter", "-f"),
        "Filter spec, repeatable, applied in order after clean: len=3..60, dedup, propn=0.8, lang=it:0.5, ...",
    ),
    parameter(
        "post_filter",
        list[str] | None,
        None,
        ("--post-filter",),
        "Filter spec run on the translated captions, after translate and the MT checks (repeatable; without "
        "--translate the same as a last --filter): ar-min-tokens=3, lang=ar:0.5, dedup, ...",
    ),
    parameter("no_images", bool, False, ("--no-images",), "Stop after the caption table (no shards)."),
    parameter("overwrite", bool, False, ("--overwrite",), "Replace a different build already in --out."),
]  # fmt: skip

EXECUTOR_GROUP = [
    parameter("executor", str, "local", ("--executor",),
              "Where the text steps and the image filters' embedding pass run: local, or ray (Ray actors "
              "over table partitions; the embedding pass on one actor per GPU)."),
    parameter("ray_address", str | None, None, ("--ray-address",),
              "Ray cluster to join, for --executor ray and --distributor ray (default: start a local one)."),
    parameter("ray_workers", int, 0, ("--ray-workers",),
              "Ray actors per step segment and for the embedding pass (0: one per GPU, else one per CPU, or "
              "per 1 + --score-workers CPUs for the embedding pass)."),
]  # fmt: skip

IMAGE_GROUP = field_parameters(ImageOptions)
IMAGE_FILTER_GROUP = [
    parameter(
        "image_filter",
        list[str] | None,
        None,
        ("--image-filter",),
        "Image filter spec, repeatable, run in order after the image stage: clip_score=0.25[:caption_orig], "
        "clip_top=0.3[:caption_orig], near_dup=0.95, phash=6, decontaminate_images=EVAL_OUT[:D].",
    ),
    parameter(
        "score_model",
        str | None,
        None,
        ("--score-model",),
        "CLIP-like model of clip_score, clip_top and near_dup: a `capbuild train` run, a local Hugging Face "
        "CLIP/SigLIP/dual-encoder folder, or open_clip:ARCH:WEIGHTS_FILE.",
    ),
    *field_parameters(ImageFilterOptions),
]
# TextOptions' fields: the translation group (translate, src_lang, beam_size, mt_*) and the filter group (the rest).
TRANSLATION_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(TextOptions)
    if f.name in ("translate", "src_lang", "beam_size") or f.name.startswith("mt_")
)
FILTER_FIELDS = tuple(f.name for f in dataclasses.fields(TextOptions) if f.name not in TRANSLATION_FIELDS)
FILTER_GROUP = field_parameters(TextOptions, FILTER_FIELDS)
TRANSLATION_GROUP = field_parameters(TextOptions, TRANSLATION_FIELDS)


def image_options(values: dict[str, Any]) -> ImageOptions:
    """The image group's values as ImageOptions (`--ray-address` also serves img2dataset's ray distributor)."""
    return ImageOptions(**field_values(ImageOptions, values), ray_address=values.get("ray_address"))


def image_filter_request(values: dict[str, Any]) -> ImageFilterRequest | None:
    """The image filter group's values (None when no --image-filter is given)."""
    specs = values.get("image_filter") or []
    if not specs:
        if values.get("score_model"):
            raise ConfigError("--score-model is the model of --image-filter clip_score/clip_top/near_dup: add one")
        return None
    options = ImageFilterOptions(**field_values(ImageFilterOptions, values))
    return ImageFilterRequest(tuple(specs), values.get("score_model"), options)


def executor_options(values: dict[str, Any]) -> ExecutorOptions:
    from capbuild.stages.text.executors.base import ExecutorOptions

    return ExecutorOptions(values["executor"], values["ray_address"], values["ray_workers"])


def text_options(values: dict[str, Any]) -> TextOptions:
    """The filter and translation groups' values as the text stage's TextOptions."""
    return TextOptions(**field_values(TextOptions, values))


def inputs_of(values: dict[str, Any]) -> list[str]:
    """Inputs given as arguments, then with --input."""
    return [*(values.get("input_args") or []), *(values.get("inputs") or [])]


def path_list(paths: list[Path] | None) -> list[Path]:
    return list(paths or [])
