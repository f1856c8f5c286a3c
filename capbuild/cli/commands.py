"""`capbuild info`, `demo`, `retry` and `decontaminate`: commands over a build folder."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from capbuild.cli.errors import report_errors
from capbuild.cli.groups import IMAGE_GROUP
from capbuild.cli.output import console, print_build_summary
from capbuild.cli.params import field_parameters, field_values, signature
from capbuild.images.options import ImageOptions
from capbuild.options import is_operational

BuildArgument = Annotated[str, typer.Argument(help="Build folder or URL: what the build's --out named.")]
# The image options a retry may change: how images are fetched, not what the shards hold.
RETRY_FIELDS = tuple(p.name for p in IMAGE_GROUP if is_operational(ImageOptions.__dataclass_fields__[p.name]))


def register(app: typer.Typer) -> None:
    app.command(epilog="Example: capbuild info it-wit/")(info)
    app.command(epilog="Example: capbuild demo --out demo-out")(demo)
    app.command(epilog="Example: capbuild retry it-wit/ --per-host-rps 5 --timeout 30")(retry)
    app.command(epilog="Example: capbuild decontaminate ar-coco/ --against xtd10/ --against xm3600/")(decontaminate)


@report_errors
def decontaminate(
    out: Annotated[Path, typer.Argument(help="A finished build folder.")],
    against: Annotated[
        list[str],
        typer.Option(
            "--against",
            help="Evaluation build folder, or a file of image_refs one a line; repeatable.",
            show_default=False,
        ),
    ],
) -> None:
    """Drop from a finished build the rows and shard samples whose image is in an evaluation set
    (by image_ref); rewrites the table and shards atomically, records the counts, updates the card."""
    from capbuild.decontaminate import decontaminate_build, describe

    for record in decontaminate_build(out, against):
        console.print(f"{describe(record)} ({record['samples']} shard samples)", markup=False)


@report_errors
def info(out: BuildArgument) -> None:
    """Show a build's manifest: configuration, stages and counts (and this capbuild's version)."""
    from capbuild.cards.summary import print_manifest
    from capbuild.storage import read_manifest

    print_manifest(read_manifest(out), console)


@report_errors
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="Build folder for the demo.")] = Path("demo-out"),
) -> None:
    """Build a small dataset end to end from sample images capbuild draws itself (no network)."""
    from capbuild.build import run_build
    from capbuild.demo import demo_request
    from capbuild.layout import BuildLayout

    manifest = run_build(demo_request(out))
    print_build_summary(out, manifest)
    shards = sorted(BuildLayout(out).shards.glob("*.tar"))
    console.print(f"Shards: {', '.join(str(s) for s in shards)}", markup=False)
    console.print("Each sample holds KEY.jpg (the image), KEY.txt (the caption), KEY.json (metadata).")
    reader = f"import webdataset as wds; print(next(iter(wds.WebDataset({str(shards[0])!r}))))"
    console.print(f'Read them back: python -c "{reader}"', markup=False)


@report_errors
def retry(out: str, **overrides: Any) -> None:
    """Fetch again the images that failed for transient reasons (timeouts, 429, 5xx, resets) and merge
    them into the build; 404s and corrupt images are not retried. The build's own fetch options (user
    agent, timeouts, pacing, ...) are reused unless given here. Counts before and after go to the manifest."""
    from capbuild.cards.card import write_card
    from capbuild.images.retry import retry_failed
    from capbuild.storage import existing_build

    with existing_build(out, upload=True) as folder:
        record = retry_failed(folder, field_values(ImageOptions, overrides, RETRY_FIELDS, drop_none=True))
        write_card(folder)
    before, after = record["before"], record["after"]
    console.print(
        f"retried {record['attempted']} image(s): {record['recovered']} recovered; "
        f"{before['success']} -> {after['success']} images; still failed: "
        + (", ".join(f"{k}: {v}" for k, v in after["failed"].items()) or "none"),
        markup=False,
    )


retry.__signature__ = signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            "out",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[str, typer.Argument(help="Build folder or URL whose image stage has finished.")],
        )
    ],
    field_parameters(ImageOptions, RETRY_FIELDS, optional=True),
)
