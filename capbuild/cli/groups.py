"""The option groups build commands share, declared once: build, image, filter, translation, executor.

The filter and translation options are the library's own lists, imported here and nowhere else in
the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from capbuild.cli.params import REQUIRED, field_parameters, field_values, from_cli_options, parameter
from capbuild.cli_params import CliOption, option
from capbuild.filters.options import CLI_OPTIONS as FILTER_CLI_OPTIONS
from capbuild.images.options import ImageOptions
from capbuild.translate.options import TRANSLATE_OPTIONS

if TYPE_CHECKING:
    from capbuild.executors.base import ExecutorOptions

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
    parameter("no_images", bool, False, ("--no-images",), "Stop after the caption table (no shards)."),
    parameter("overwrite", bool, False, ("--overwrite",), "Replace a different build already in --out."),
]  # fmt: skip

EXECUTOR_OPTIONS: list[CliOption] = [
    option("executor", str, "local", "--executor",
           help="Where the text filters run: local, or ray (Ray actors over table partitions)."),
    option("ray_address", str | None, None, "--ray-address",
           help="Ray cluster to join, for --executor ray and --distributor ray (default: start a local one)."),
    option("ray_workers", int, 0, "--ray-workers", help="Ray actors per filter segment (0: one per CPU, or GPU)."),
]  # fmt: skip
EXECUTOR_GROUP = from_cli_options(EXECUTOR_OPTIONS)

IMAGE_GROUP = field_parameters(ImageOptions)
# Options the text steps read (FilterContext.options): the filter group and the translation group.
FILTER_OPTIONS: list[CliOption] = [*FILTER_CLI_OPTIONS]
TRANSLATION_OPTIONS: list[CliOption] = [*TRANSLATE_OPTIONS]
FILTER_GROUP = from_cli_options(FILTER_OPTIONS)
TRANSLATION_GROUP = from_cli_options(TRANSLATION_OPTIONS)


def image_options(values: dict[str, Any]) -> ImageOptions:
    """The image group's values as ImageOptions (`--ray-address` also serves img2dataset's ray distributor)."""
    return ImageOptions(**field_values(ImageOptions, values), ray_address=values.get("ray_address"))


def executor_options(values: dict[str, Any]) -> ExecutorOptions:
    from capbuild.executors.base import ExecutorOptions

    return ExecutorOptions(values["executor"], values["ray_address"], values["ray_workers"])


def text_options(values: dict[str, Any], target_lang: str) -> dict[str, Any]:
    """The filter and translation options as the text steps read them; translating targets --lang."""
    options = {o.name: values[o.name] for o in (*FILTER_OPTIONS, *TRANSLATION_OPTIONS)}
    return options | ({"target_lang": target_lang} if values.get("translate") else {})


def inputs_of(values: dict[str, Any]) -> list[str]:
    """Inputs given as arguments, then with --input."""
    return [*(values.get("input_args") or []), *(values.get("inputs") or [])]


def path_list(paths: list[Path] | None) -> list[Path]:
    return list(paths or [])
