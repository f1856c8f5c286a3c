"""`capbuild image-filter OUT`: the image filters on a finished build (builds run them with the same
options, see IMAGE_FILTER_GROUP)."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

from capbuild.cli.errors import report_errors
from capbuild.cli.groups import EXECUTOR_GROUP, IMAGE_FILTER_GROUP, executor_options, image_filter_request
from capbuild.cli.output import console
from capbuild.cli.params import signature
from capbuild.errors import ConfigError
from capbuild.imagefilters.options import let_idle_openmp_threads_sleep


def register(app: typer.Typer) -> None:
    example = (
        "capbuild image-filter ar-coco/ --image-filter clip_score=0.25:caption_orig --image-filter near_dup=0.95 "
        "--score-model open_clip:ViT-B-32:open_clip_pytorch_model.bin"
    )
    app.command("image-filter", epilog=f"Example: {example}")(image_filter)


@report_errors
def image_filter(out: str, **values: Any) -> None:
    """Run image filters (CLIP score, near-duplicates, pHash copies, image decontamination) on a build
    whose image stage has finished: one embedding pass (on Ray actors, one per GPU, with --executor ray),
    then the filters in order; dropped samples and their images go to rejected/. A later run applies to
    what earlier runs kept."""
    from capbuild.cards.card import write_card
    from capbuild.storage import existing_build

    request = image_filter_request(values)
    if request is None:
        raise ConfigError("give at least one --image-filter (see: capbuild image-filter --help)")
    let_idle_openmp_threads_sleep()
    request.check()
    with existing_build(out, upload=True) as folder:
        manifest = request.run(folder, executor_options(values))
        write_card(folder)
    record = manifest["counts"]["image_filters"][-1]
    drops = ", ".join(f"{f['filter']}: {f['dropped']}" for f in record["filters"])
    console.print(f"image filters: {record['samples']} samples in, {record['kept']} kept ({drops})", markup=False)


image_filter.__signature__ = signature(  # type: ignore[attr-defined]
    [
        inspect.Parameter(
            "out",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[str, typer.Argument(help="Build folder or URL whose image stage has finished.")],
        )
    ],
    IMAGE_FILTER_GROUP,
    EXECUTOR_GROUP,
)
