"""The `capbuild` command: a root Typer app with one command per registered builder, then the
follow-up commands. Commands parse options and call the library; they hold no logic of their own."""

from __future__ import annotations

from typing import Annotated

import typer

from capbuild import __version__
from capbuild.builders.base import builders
from capbuild.cli import cards, commands, imagefilters, train
from capbuild.cli.build import add_builder_commands
from capbuild.cli.translate import translate_app

HELP = "Build multilingual image-caption datasets (caption table, filters, WebDataset shards)."
EXAMPLE = "capbuild wit wit_v1.train.all-*.tsv.gz --lang it --filter propn=0.8 --out it-wit/"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"capbuild {__version__}")
        raise typer.Exit()


def _root(
    version: Annotated[
        bool, typer.Option("--version", help="Show capbuild's version and exit.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Build multilingual image-caption datasets (caption table, filters, WebDataset shards)."""


def make_app() -> typer.Typer:
    """The command line, with a command for every builder registered now."""
    app = typer.Typer(
        help=HELP,
        epilog=f"Example: {EXAMPLE}",
        no_args_is_help=True,
        rich_markup_mode=None,
        pretty_exceptions_show_locals=False,
    )
    app.callback()(_root)
    add_builder_commands(app, builders())
    app.add_typer(translate_app, name="translate")
    commands.register(app)
    cards.register(app)
    imagefilters.register(app)
    train.register(app)
    return app
