"""The `capbuild` command: thin Typer wrappers that parse options and call the library."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from capbuild.build import BuildConflictError, BuildRequest, run_build
from capbuild.builders.base import Builder
from capbuild.builders.cc import ConceptualCaptionsBuilder
from capbuild.builders.coco import CocoBuilder
from capbuild.builders.flickr8k import Flickr8kBuilder
from capbuild.builders.pairs import PairsBuilder
from capbuild.builders.wap import WapBuilder
from capbuild.builders.wit import WitBuilder
from capbuild.cards.commands import app as cards_app
from capbuild.cli_params import REQUIRED, dataclass_options, dataclass_values, option
from capbuild.images.stage import DEFAULT_PER_HOST_RPS, DISTRIBUTORS, RESIZE_MODES, ImageOptions
from capbuild.manifest import load_manifest
from capbuild.stages.text.executors import EXECUTORS, ExecutorOptions
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.plan import make_plan
from capbuild.stages.text.records import step_records
from capbuild.storage import build_folder, local_inputs
from capbuild.train.commands import register as register_train_commands
from capbuild.translate.cli import translate_app

app = typer.Typer(
    help="Build multilingual image-caption datasets (caption table, filters, WebDataset shards).",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
console = Console(stderr=True)
app.add_typer(cards_app)


# Options every build command takes.
BUILD_OPTIONS = [
    option(
        "out",
        str,
        REQUIRED,
        "--out",
        "-o",
        help="Build folder, local or any fsspec URL (s3://, gs://, hf://): created; resumed when it holds this build.",
    ),
    option("lang", str, "en", "--lang", help="Language of the captions (ISO 639-1, e.g. it, ar, id)."),
    option(
        "filter",
        list[str] | None,
        None,
        "--filter",
        "-f",
        help="Filter spec, repeatable, applied in order after clean: len=3..60, dedup, propn=0.8, lang=it:0.5, ...",
    ),
    option(
        "post_filter",
        list[str] | None,
        None,
        "--post-filter",
        help="Filter spec, repeatable, applied to the translated captions (after --translate and the MT checks); "
        "without --translate, a --filter placed last.",
    ),
    option("image_size", int, 256, "--image-size", help="Side of the resized images, in pixels."),
    option("resize_mode", str, "border", "--resize-mode", help=f"img2dataset resize mode: {', '.join(RESIZE_MODES)}."),
    option("shard_size", int, 10_000, "--shard-size", help="Samples per WebDataset shard."),
    option("processes", int, 1, "--processes", help="img2dataset worker processes."),
    option("threads", int, 16, "--threads", help="Download threads per process."),
    option("timeout", int, 10, "--timeout", help="Seconds before an image download is abandoned."),
    option("retries", int, 0, "--retries", help="Extra download attempts for a failed image."),
    option(
        "per_host_rps",
        float,
        DEFAULT_PER_HOST_RPS,
        "--per-host-rps",
        help="Most requests per second to one host (0: no limit); 429/503 Retry-After is always honoured.",
    ),
    option("user_agent", str | None, None, "--user-agent", help="Token naming your crawler in the User-Agent header."),
    option(
        "distributor",
        str,
        "multiprocessing",
        "--distributor",
        help=f"img2dataset distributor for the image stage: {', '.join(DISTRIBUTORS)}.",
    ),
    option("spark_master", str | None, None, "--spark-master", help="Spark master for --distributor pyspark."),
    option(
        "executor",
        str,
        "local",
        "--executor",
        help=f"Where the text filters run: {', '.join(EXECUTORS)} (Ray actors over table partitions).",
    ),
    option("ray_address", str | None, None, "--ray-address", help="Ray cluster to join (default: start a local one)."),
    option("ray_workers", int, 0, "--ray-workers", help="Ray actors per filter segment (0: one per CPU, or GPU)."),
    option("no_images", bool, False, "--no-images", help="Stop after the caption table (no shards)."),
    option("overwrite", bool, False, "--overwrite", help="Replace a different build already in --out."),
]

# The text steps' build-wide options (POS, language, translation), generated from TextOptions.
FILTER_OPTIONS: list[inspect.Parameter] = dataclass_options(TextOptions)


def build_command(
    name: str, summary: str, example: str, params: list[inspect.Parameter], make_builder: Callable[..., Builder]
) -> None:
    """Register `capbuild NAME`: the builder's own options plus every build and filter option."""
    builder_names = [p.name for p in params]

    def command(**options: Any) -> None:
        with _errors(), build_folder(options["out"], options["overwrite"]) as out:
            text_options: TextOptions = dataclass_values(TextOptions, options)
            builder = make_builder(
                lang=text_options.source_lang(options["lang"]), **{n: options[n] for n in builder_names}
            )
            plan = make_plan(options["lang"], options["filter"] or [], options["post_filter"] or [], text_options)
            request = BuildRequest(
                builder=builder,
                out=out,
                plan=plan,
                images=None if options["no_images"] else _image_options(options),
                overwrite=options["overwrite"],
                executor=ExecutorOptions(options["executor"], options["ray_address"], options["ray_workers"]),
            )
            manifest = run_build(request)
            _print_summary(options["out"], manifest)

    command.__signature__ = inspect.Signature([*params, *BUILD_OPTIONS, *FILTER_OPTIONS])  # type: ignore[attr-defined]
    command.__doc__ = summary
    app.command(name, epilog=f"Example: {example}")(command)


def _image_options(options: dict[str, Any]) -> ImageOptions:
    return ImageOptions(
        image_size=options["image_size"],
        resize_mode=options["resize_mode"],
        shard_size=options["shard_size"],
        processes=options["processes"],
        threads=options["threads"],
        timeout=options["timeout"],
        retries=options["retries"],
        per_host_rps=options["per_host_rps"],
        user_agent_token=options["user_agent"],
        distributor=options["distributor"],
        spark_master=options["spark_master"],
        ray_address=options["ray_address"],
    )


INPUTS = option(
    "inputs",
    list[str],
    REQUIRED,
    "--input",
    "-i",
    help="Input file, folder or glob, repeatable: a local path or any fsspec URL (s3://, gs://, hf://, https://).",
)
IMAGES = option("image_dirs", list[Path] | None, None, "--images", help="Folder holding the image files, repeatable.")

build_command(
    "coco",
    "MS-COCO captions (2014/2017 JSON, translated files in that layout, Karpathy's split JSON).",
    "capbuild coco --input captions_train2017.json --images train2017/ --lang en --out coco-en/",
    [INPUTS, IMAGES],
    lambda lang, inputs, image_dirs: CocoBuilder(lang=lang, inputs=local_inputs(inputs), image_dirs=image_dirs or []),
)
build_command(
    "flickr8k",
    "Flickr8k: Flickr8k.token.txt, its split lists and translated token files (--captions).",
    "capbuild flickr8k --input Flickr8k_text/ --images Flicker8k_Dataset/ "
    "--captions Flickr8k.arabic.full.txt --lang ar --out ar-flickr8k/",
    [
        INPUTS,
        IMAGES,
        option("captions", Path | None, None, "--captions", help="Translated token file, captions in --lang."),
    ],
    lambda lang, inputs, image_dirs, captions: Flickr8kBuilder(
        lang=lang, inputs=local_inputs(inputs), image_dirs=image_dirs or [], captions=captions
    ),
)

# Web sources: inputs are strings so that fsspec URLs (s3://, gs://, hf://, https://) and globs pass through.
WEB_INPUTS = option(
    "inputs", list[str], REQUIRED, "--input", "-i", help="Input file, folder, glob or fsspec URL, repeatable."
)
build_command(
    "wit",
    "WIT (Wikipedia-based Image Text) TSV files, gzipped or not, local or remote; --lang it,ar keeps those languages.",
    "capbuild wit --lang it --filter propn=0.8 --input 'wit_v1.train.all-*.tsv.gz' --out it-wit/",
    [
        WEB_INPUTS,
        option(
            "caption_field",
            str,
            "reference",
            "--caption-field",
            help="Caption to keep: reference (under the image), attribution (Commons description), alt, or all.",
        ),
    ],
    lambda lang, inputs, caption_field: WitBuilder(lang=lang, inputs=inputs, caption_field=caption_field),
)
build_command(
    "cc",
    "Conceptual Captions: CC3M (caption<TAB>url) and CC12M (url<TAB>caption) TSV files, English.",
    "capbuild cc --input Train_GCC-training.tsv --out cc3m-en/",
    [WEB_INPUTS],
    lambda lang, inputs: ConceptualCaptionsBuilder(lang=lang, inputs=inputs),
)
PAIRS_OPTIONS = [
    option("url_col", str | None, None, "--url-col", help="Column of image URLs (http(s):// or file://)."),
    option("path_col", str | None, None, "--path-col", help="Column of image file paths (relative: see --images)."),
    option("caption_col", str, "caption", "--caption-col", help="Column of the caption, or of a list of captions."),
    option("id_col", str | None, None, "--id-col", help="Column of a unique row id (default: FILE:ROW)."),
    option("format", str | None, None, "--format", help="tsv, csv, jsonl or parquet (default: from the extension)."),
    option("source", str, "pairs", "--source", help="Source name for the rows, the manifest and the card."),
    option("columns", str | None, None, "--columns", help="Column names of a CSV/TSV without a header: a,b,c."),
]
build_command(
    "pairs",
    "Any table of image URLs or paths with captions (TSV, CSV, JSONL, parquet; a caption cell may be a list).",
    "capbuild pairs --input captions.jsonl --path-col image_path --caption-col captions --images imgs/ "
    "--lang it --out it-pairs/",
    [WEB_INPUTS, IMAGES, *PAIRS_OPTIONS],
    lambda lang, inputs, image_dirs, columns, **cols: PairsBuilder(
        lang=lang,
        inputs=inputs,
        image_dirs=image_dirs or [],
        columns=[c.strip() for c in columns.split(",")] if columns else None,
        **cols,
    ),
)
build_command(
    "wap",
    "WAP (WikipediaArabicPairs) CSV, published layout or the headerless caption,url one; Arabic.",
    "capbuild wap --input 'WikipediaArabicPairs(WAP).csv' --filter ar-normalize --filter ar-min-tokens=3 --out ar-wap/",
    [WEB_INPUTS],
    # --lang defaults to en for every build command; WAP is Arabic whatever the default.
    lambda lang, inputs: WapBuilder(lang="ar" if lang == "en" else lang, inputs=inputs),
)
app.add_typer(translate_app, name="translate")


@app.command(epilog="Example: capbuild info it-wit/")
def info(out: Annotated[Path, typer.Argument(help="Build folder.")]) -> None:
    """Show a build's manifest: configuration, stages and counts."""
    with _errors():
        manifest = load_manifest(out)
        if manifest is None:
            raise ValueError(f"{out} holds no manifest.json: is it a capbuild build folder?")
        _print_manifest(manifest)


@app.command(epilog="Example: capbuild demo --out demo-out")
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Build folder for the demo.")] = Path("demo-out"),
) -> None:
    """Build a small dataset end to end from sample images capbuild draws itself (no network)."""
    from capbuild.demo import write_sample_coco

    with _errors():
        captions_file, images_dir = write_sample_coco(out / "sample-input")
        request = BuildRequest(
            builder=CocoBuilder(lang="en", inputs=[captions_file], image_dirs=[images_dir]),
            out=out,
            plan=make_plan("en", ["len=3..30", "dedup"]),
            images=ImageOptions(image_size=64, shard_size=10, threads=4),
            overwrite=True,
        )
        manifest = run_build(request)
        _print_summary(out, manifest)
        shards = sorted((out / "shards").glob("*.tar"))
        console.print(f"Shards: {', '.join(str(s) for s in shards)}")
        console.print("Each sample holds KEY.jpg (the image), KEY.txt (the caption), KEY.json (metadata).")
        reader = f"import webdataset as wds; print(next(iter(wds.WebDataset({str(shards[0])!r}))))"
        console.print(f'Read them back: python -c "{reader}"')


@app.command(epilog="Example: capbuild retry it-wit/ --per-host-rps 5 --timeout 30")
def retry(
    out: Annotated[Path, typer.Argument(help="Build folder whose image stage has finished.")],
    timeout: Annotated[int | None, typer.Option("--timeout", help="Seconds before a download is abandoned.")] = None,
    retries: Annotated[int | None, typer.Option("--retries", help="Extra attempts per image.")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="Download threads per process.")] = None,
    processes: Annotated[int | None, typer.Option("--processes", help="img2dataset worker processes.")] = None,
    per_host_rps: Annotated[
        float | None, typer.Option("--per-host-rps", help="Most requests per second to one host (0: no limit).")
    ] = None,
    user_agent: Annotated[str | None, typer.Option("--user-agent", help="Token naming your crawler.")] = None,
) -> None:
    """Fetch again the images that failed for transient reasons (timeouts, 429, 5xx, resets) and merge
    them into the build; 404s and corrupt images are not retried. Counts before and after go to the manifest."""
    from capbuild.images.retry import retry_failed

    given = {"timeout": timeout, "retries": retries, "threads": threads, "processes": processes,
             "per_host_rps": per_host_rps, "user_agent_token": user_agent}  # fmt: skip
    with _errors():
        record = retry_failed(out, {k: v for k, v in given.items() if v is not None})
        before, after = record["before"], record["after"]
        console.print(
            f"[bold green]retried[/] {record['attempted']} image(s): {record['recovered']} recovered; "
            f"{before['success']} -> {after['success']} images; still failed: "
            + (", ".join(f"{k}: {v}" for k, v in after["failed"].items()) or "none")
        )


def _print_summary(out: str | Path, manifest: dict[str, Any]) -> None:
    text = manifest["counts"].get("text", {})
    images = manifest["counts"].get("images")
    console.print(
        f"[bold green]done[/]: {text.get('source_rows', 0)} rows read, {text.get('captions', 0)} kept, "
        f"{text.get('rejected', 0)} rejected (see {_join(out, 'rejected')})"
    )
    if images:
        failed = ", ".join(f"{k}: {v}" for k, v in images["failed"].items()) or "none"
        console.print(
            f"images: {images['success']} in {images['shards']} shard(s) under {_join(out, 'shards')}; failed: {failed}"
        )
    console.print(f"details: capbuild info {out}")


def _join(out: str | Path, name: str) -> str:
    return f"{str(out).rstrip('/')}/{name}"


def _print_manifest(manifest: dict[str, Any]) -> None:
    config = Table(title="Build", show_header=False)
    config.add_row("fingerprint", manifest["fingerprint"])
    for key, value in manifest["config"].items():
        config.add_row(key, json.dumps(value, ensure_ascii=False))
    for stage, state in manifest["stages"].items():
        config.add_row(f"stage {stage}", "done" if state.get("done") else "not done")
    console.print(config)
    text = manifest["counts"].get("text")
    if text:
        filters = Table(title=f"Text steps ({text['source_rows']} rows from the builder)")
        for column in ("step", "kind", "in", "kept", "dropped", "errors"):
            filters.add_column(column, justify="left" if column in ("step", "kind") else "right")
        for record in step_records(manifest):
            counts = [str(record.counts.get(what, 0)) for what in ("in", "kept", "dropped", "errors")]
            filters.add_row(record.spec, record.kind, *counts)
        console.print(filters)
        builder = Table(title="Builder: skipped and repaired")
        builder.add_column("what")
        builder.add_column("count", justify="right")
        for kind, counts in text["builder"].items():
            for reason, count in counts.items():
                builder.add_row(f"{kind}: {reason}", str(count))
        console.print(builder)
        for record in step_records(manifest):
            if not record.report:
                continue
            details = Table(title=record.spec, show_header=False)
            for key, value in record.report.items():
                details.add_row(key, str(value))
            console.print(details)
    images = manifest["counts"].get("images")
    if images:
        table = Table(title="Images by source")
        outcomes = sorted({o for c in images["per_source"].values() for o in c})
        table.add_column("source")
        for outcome in outcomes:
            table.add_column(outcome, justify="right")
        for source, counts in images["per_source"].items():
            table.add_row(source, *(str(counts.get(o, 0)) for o in outcomes))
        console.print(table)


class _errors:
    """Turn the library's expected errors into a red message and exit code, without a traceback."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _tb: Any) -> bool:
        if isinstance(error, (ValueError, FileNotFoundError, BuildConflictError, RuntimeError)):
            console.print(f"[bold red]error:[/] {error}", soft_wrap=True)
            raise typer.Exit(2)
        return False


register_train_commands(app)


def main() -> None:
    app()
