"""One `capbuild SOURCE` command per registered builder, generated from the builder's fields and the
shared option groups. Everything is checked before --out is created or touched."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from capbuild.builders.base import Builder
from capbuild.cli.errors import report_errors
from capbuild.cli.groups import (
    BUILD_GROUP,
    EXECUTOR_GROUP,
    FILTER_GROUP,
    IMAGE_FILTER_GROUP,
    IMAGE_GROUP,
    INPUTS_HELP,
    TRANSLATION_GROUP,
    executor_options,
    image_filter_request,
    image_options,
    inputs_of,
    text_options,
)
from capbuild.cli.output import console, print_build_summary
from capbuild.cli.params import field_parameters, field_values, signature
from capbuild.errors import ConfigError
from capbuild.imagefilters.options import let_idle_openmp_threads_sleep

INPUT_ARGUMENTS = inspect.Parameter(
    "input_args",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[list[str] | None, typer.Argument(help=INPUTS_HELP, show_default=False)],
)


def add_builder_commands(app: typer.Typer, builders: dict[str, type[Builder]]) -> None:
    """Register `capbuild NAME` for every builder."""
    for name, cls in builders.items():
        app.command(name, help=cls.summary or cls.__doc__, epilog=f"Example: {cls.example}")(builder_command(cls))


def builder_command(cls: type[Builder]) -> Any:
    """The command of one builder: its own options, then the shared groups."""

    @report_errors
    def command(**values: Any) -> None:
        run_builder_command(cls, values)

    command.__signature__ = signature(  # type: ignore[attr-defined]
        [INPUT_ARGUMENTS],
        field_parameters(cls, cls.options()),
        BUILD_GROUP,
        FILTER_GROUP,
        TRANSLATION_GROUP,
        IMAGE_GROUP,
        IMAGE_FILTER_GROUP,
        EXECUTOR_GROUP,
    )
    command.__name__ = cls.name
    return command


def run_builder_command(cls: type[Builder], values: dict[str, Any]) -> None:
    """Check every input and option, then run (or resume) the build."""
    from capbuild.build import BuildRequest, incomplete_build, preflight, run_build
    from capbuild.stages.text.plan import make_plan
    from capbuild.storage import build_folder

    inputs = inputs_of(values)
    if not inputs:
        raise ConfigError(
            f"give the {cls.name} input files as arguments or with --input (see: capbuild {cls.name} --help)"
        )
    image_filters = image_filter_request(values)
    if image_filters is not None:
        let_idle_openmp_threads_sleep()
    target = values["lang"] or cls.default_lang
    options = text_options(values)
    builder = cls(inputs=inputs, lang=options.source_lang(target), **field_values(cls, values, cls.options()))
    request = BuildRequest(
        builder=builder,
        out=Path(values["out"]),
        plan=make_plan(target, values["filter"] or [], values["post_filter"] or [], options),
        images=None if values["no_images"] else image_options(values),
        overwrite=values["overwrite"],
        executor=executor_options(values),
        image_filters=image_filters,
    )
    preflight(request)
    with build_folder(values["out"], values["overwrite"]) as out:
        request.out = out
        if not values["overwrite"] and incomplete_build(out):
            console.print(
                f"note: {values['out']} held only the manifest of a build that stopped before its caption table; "
                "it is replaced by this one",
                markup=False,
            )
        manifest = run_build(request)
    print_build_summary(values["out"], manifest)
