"""`capbuild card | publish | mix | inspect`: thin commands over capbuild.cards."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from capbuild.cli.errors import report_errors
from capbuild.cli.output import console

BuildArgument = Annotated[str, typer.Argument(help="Build folder or URL: what the build's --out named.")]


def register(app: typer.Typer) -> None:
    app.command(epilog="Example: capbuild card coco-en/")(card)
    app.command(epilog="Example: capbuild publish it-wit/ --repo my-name/it-wit --private --dry-run")(publish)
    app.command(epilog="Example: capbuild mix ar-coco/ ar-wit/ --weights 3,1 --out ar-mix/")(mix)
    app.command(epilog="Example: capbuild inspect it-wit/ --html it-wit-report.html")(inspect)


@report_errors
def card(out: BuildArgument) -> None:
    """Write OUT/README.md, the Hugging Face dataset card, from the build's manifest (builds do it too)."""
    from capbuild.cards.card import write_card
    from capbuild.storage import existing_build

    with existing_build(out, upload=True) as folder:
        path = write_card(folder)
    console.print(f"card: {path}", markup=False)


@report_errors
def publish(
    out: BuildArgument,
    repo: Annotated[str, typer.Option("--repo", help="Dataset repo on the Hub: NAME/DATASET.")],
    private: Annotated[bool, typer.Option("--private", help="Create the repo private.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded, upload nothing.")] = False,
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="Name input files relative to this folder in the uploaded card and manifest "
            "(default: by file name only).",
        ),
    ] = None,
) -> None:
    """Upload a build (card, manifest, caption table, shards) to a Hugging Face dataset repo.

    The token is huggingface_hub's: HF_TOKEN or `hf auth login`. Re-running resumes an interrupted upload.
    The uploaded card and manifest never hold this machine's absolute paths.
    """
    from capbuild.cards.publish import human_size, publish, upload_files
    from capbuild.storage import existing_build

    with existing_build(out) as folder:
        files = upload_files(folder)
        listing = Table(title=f"{'Would upload' if dry_run else 'Uploading'} to datasets/{repo}")
        listing.add_column("file")
        listing.add_column("size", justify="right")
        for f in files:
            listing.add_row(f.path, human_size(f.size))
        listing.add_row(f"{len(files)} files", human_size(sum(f.size for f in files)))
        console.print(listing)
        if not dry_run:
            console.print(f"published: {publish(folder, repo, private=private, root=root)}", markup=False)


@report_errors
def mix(
    builds: Annotated[list[str], typer.Argument(help="Build folders to mix.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for mixture.json, manifest.json and the card.")],
    weights: Annotated[
        str | None, typer.Option("--weights", help="Share of training samples per build, e.g. 3,1 (default: equal).")
    ] = None,
    copy: Annotated[bool, typer.Option("--copy", help="Copy the shards into OUT/shards/<build>/.")] = False,
) -> None:
    """Mix builds into one dataset: shard lists with sampling weights for the trainer, a manifest and a card."""
    from capbuild.cards.mix import MIXTURE_NAME, make_mixture, parse_weights, train_command
    from capbuild.storage import local_path

    folders = [local_path(b) for b in builds]
    mixture = make_mixture(folders, parse_weights(weights, len(builds)), out, copy=copy)
    table = Table(title=f"Mixture {out / MIXTURE_NAME}")
    for column in ("build", "weight", "probability", "train samples"):
        table.add_column(column, justify="left" if column == "build" else "right")
    for source in mixture["sources"]:
        table.add_row(source["name"], f"{source['weight']:g}", f"{source['probability']:.3f}", f"{source['samples']:,}")
    console.print(table)
    console.print(f"train on it: {train_command(out)} ...", markup=False)
    console.print(
        f"open_clip: --train-data '{mixture['open_clip']['train_data']}' --train-data-upsampling-factors "
        f"'{mixture['open_clip']['train_data_upsampling_factors']}' --dataset-resampled",
        markup=False,
    )


@report_errors
def inspect(
    out: BuildArgument,
    html: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
    samples: Annotated[
        int | None,
        typer.Option("--samples", help="Random kept samples to show (default: 24 in HTML, 8 in the terminal)."),
    ] = None,
    per_filter: Annotated[int, typer.Option("--per-filter", help="Dropped rows shown per filter.")] = 12,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random choice of samples.")] = 0,
) -> None:
    """Look at a build: random samples, what each filter dropped and why, failures, caption histograms."""
    from capbuild.cards.report import build_report
    from capbuild.storage import existing_build

    count = samples if samples is not None else (8 if html is None else 24)
    with existing_build(out) as folder:
        report = build_report(folder, samples=count, per_group=per_filter, seed=seed, thumbnails=html is not None)
    if html is None:
        from capbuild.cards.summary import print_summary

        print_summary(report, console)
    else:
        from capbuild.cards.html_report import write_html

        console.print(f"report: {write_html(report, html)}", markup=False)
