"""Typer options generated from dataclass fields with opt metadata (as builders, ImageOptions, TrainConfig
and the text steps' frozen option dataclasses declare them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import typer
from typer.testing import CliRunner

from capbuild.cli.params import field_parameters, field_values, signature
from capbuild.options import opt


@dataclass(frozen=True)
class Options:
    model: str = field(metadata=opt("Model folder.", short="-m"))
    backend: str = field(default="spacy", metadata=opt("Tagger."))
    workers: int = field(default=1, metadata=opt("Processes.", flag="--pos-workers", operational=True))
    candidates: str | None = field(default=None, metadata=opt("Languages."))
    specs: list[str] = field(default_factory=list, metadata=opt("Specs, repeatable."))
    augment: bool = field(default=True, metadata=opt("Augment."))
    hidden: int = field(default=3, metadata=opt("Not on the command line.", cli=False))


def _run(arguments: list[str], optional: bool = False) -> dict:
    seen: dict = {}
    app = typer.Typer()

    def command(**values) -> None:
        seen.update(field_values(Options, values, drop_none=optional))

    command.__signature__ = signature(field_parameters(Options, optional=optional))
    app.command()(command)
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    return seen


def test_fields_become_options_and_values_rebuild_the_dataclass():
    values = _run(["-m", "x", "--pos-workers", "2", "--specs", "a", "--specs", "b", "--no-augment"])
    assert Options(**values) == Options(model="x", workers=2, specs=["a", "b"], augment=False)
    assert Options(**_run(["--model", "x"])) == Options(model="x")


def test_optional_options_leave_unset_fields_out():
    assert _run(["--backend", "stanza"], optional=True) == {"backend": "stanza"}


def test_a_missing_required_field_is_a_usage_error():
    app = typer.Typer()

    def command(**values) -> None: ...

    command.__signature__ = signature(field_parameters(Options))
    app.command()(command)
    assert CliRunner().invoke(app, []).exit_code == 2


def test_an_option_declared_twice_is_refused():
    with pytest.raises(TypeError, match="declared twice"):
        signature(field_parameters(Options), field_parameters(Options, ("model",)))
