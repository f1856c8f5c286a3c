"""The one error path of every command: a CapbuildError is the user's to fix and prints as plain text
(no markup, so `pip install 'capbuild[pos]'` reaches the terminal whole) with exit code 2; any other
exception is a bug and keeps its traceback (exit code 1)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from capbuild.errors import CapbuildError

EXIT_USER_ERROR = 2
F = TypeVar("F", bound=Callable[..., Any])


def report_errors(command: F) -> F:
    """Wrap a command so that its CapbuildErrors print as `error: MESSAGE` and exit with code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except CapbuildError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(EXIT_USER_ERROR) from None

    return wrapper  # type: ignore[return-value]
