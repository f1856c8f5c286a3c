"""How library modules declare command-line options without importing the CLI: `option()` returns a
plain description that `capbuild.cli` turns into a Typer option. New options should be dataclass
fields with `capbuild.options.opt` metadata instead; this form remains for the filter and
translation option lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CliOption:
    """One keyword option: its parameter name, type, default, flags and help."""

    name: str
    kind: Any
    default: Any
    flags: tuple[str, ...]
    help: str


def option(name: str, kind: Any, default: Any, *flags: str, help: str) -> CliOption:
    """A command-line option of a build command."""
    return CliOption(name, kind, default, flags, help)
