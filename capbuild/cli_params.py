"""How capbuild's modules declare the command-line options they add to the build commands."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

import typer

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
