"""Where commands print: stderr, through rich; user text goes with markup=False."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

console = Console(stderr=True, soft_wrap=True)


def print_build_summary(out: str | Path, manifest: dict[str, Any]) -> None:
    from capbuild.cards.summary import print_build_summary as render

    render(out, manifest, console)
