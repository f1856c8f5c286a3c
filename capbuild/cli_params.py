"""How capbuild's modules declare the command-line options they add to the build commands."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Annotated, Any

import typer

from capbuild.options import CLI, HELP, SHORT, option_flag

REQUIRED = inspect.Parameter.empty


def option(name: str, kind: Any, default: Any, *flags: str, help: str) -> inspect.Parameter:
    """A keyword-only Typer option as an inspect.Parameter (build commands assemble their
    signatures from these lists)."""
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[kind, typer.Option(*flags, help=help)],
    )


def dataclass_options(cls: type, exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """The Typer options of an option-bearing dataclass: one per field with `opt(...)` metadata that
    the CLI shows (flag and help from the metadata, type and default from the field)."""
    hints = typing.get_type_hints(cls)
    params = []
    for field in dataclasses.fields(cls):
        if field.name in exclude or not field.metadata.get(CLI, True) or HELP not in field.metadata:
            continue
        default = field.default if field.default is not dataclasses.MISSING else REQUIRED
        flags = [option_flag(field), *([field.metadata[SHORT]] if field.metadata.get(SHORT) else [])]
        params.append(option(field.name, hints[field.name], default, *flags, help=field.metadata[HELP]))
    return params


def dataclass_values(cls: type, options: dict[str, Any]) -> Any:
    """An instance of `cls` from a command's keyword arguments (the fields dataclass_options added)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in options.items() if k in names})
