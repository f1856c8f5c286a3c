"""Typer options generated from dataclass fields with `capbuild.options.opt` metadata: the one place
option declarations become flags."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Annotated, Any

import typer

from capbuild.options import CLI, HELP, SHORT, option_flag

KEYWORD = inspect.Parameter.KEYWORD_ONLY
REQUIRED = inspect.Parameter.empty


def parameter(name: str, kind: Any, default: Any, flags: tuple[str, ...], help: str) -> inspect.Parameter:
    """A keyword-only Typer option as an inspect.Parameter (commands assemble signatures from these)."""
    return inspect.Parameter(
        name, KEYWORD, default=default, annotation=Annotated[kind, typer.Option(*flags, help=help)]
    )


def cli_fields(cls: type, names: tuple[str, ...] | None = None) -> list[dataclasses.Field[Any]]:
    """The fields of a dataclass that the CLI shows (`names` narrows and orders them)."""
    shown = [f for f in dataclasses.fields(cls) if f.init and HELP in f.metadata and f.metadata.get(CLI, True)]
    if names is None:
        return shown
    by_name = {f.name: f for f in shown}
    return [by_name[n] for n in names if n in by_name]


def field_parameters(
    cls: type, names: tuple[str, ...] | None = None, *, optional: bool = False, prefix: str = ""
) -> list[inspect.Parameter]:
    """One Typer option per CLI field of `cls`. A field without a default is a required option; a bool
    field defaulting to True gets a `--no-NAME` form. With `optional`, every option defaults to None
    (unset), for commands that override recorded values. `prefix` namespaces the parameter names."""
    hints = typing.get_type_hints(cls)
    params = []
    for f in cli_fields(cls, names):
        kind = hints[f.name]
        default = _default(f)
        flag = option_flag(f)
        if kind is bool and default is True and not optional:
            flag = f"{flag}/--no-{flag.removeprefix('--')}"
        flags = (flag, f.metadata[SHORT]) if f.metadata.get(SHORT) else (flag,)
        if optional:
            kind, default = kind | None, None
        params.append(parameter(prefix + f.name, kind, default, flags, f.metadata[HELP]))
    return params


def field_values(cls: type, values: dict[str, Any], names: tuple[str, ...] | None = None, *, prefix: str = "",
                 drop_none: bool = False) -> dict[str, Any]:  # fmt: skip
    """The keyword arguments of `cls` among a command's values (see `field_parameters`)."""
    found = {}
    for f in cli_fields(cls, names):
        value = values.get(prefix + f.name)
        unset_list = value is None and f.default_factory is not dataclasses.MISSING  # Typer gives None for []
        if prefix + f.name in values and not unset_list and not (drop_none and value is None):
            found[f.name] = value
    return found


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        return value or None  # Typer shows an empty list default as None
    return REQUIRED


def signature(*groups: list[inspect.Parameter]) -> inspect.Signature:
    """A command signature from option groups; a name given twice is a programming error."""
    params = [p for group in groups for p in group]
    names = [p.name for p in params]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TypeError(f"options declared twice: {duplicates}")
    return inspect.Signature(params)
