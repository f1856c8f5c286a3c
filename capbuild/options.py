"""Options declared once, as dataclass fields: help text, command-line flag and whether the
option is *operational* (decides how fast a build runs, not what it writes).

    @dataclass(frozen=True)
    class PosConfig:
        threshold: float = field(default=0.8, metadata=opt("Largest PROPN ratio kept."))
        workers: int = field(default=1, metadata=opt("POS processes.", flag="--pos-workers", operational=True))

The CLI generates its options from these fields; the build fingerprint leaves operational fields out,
so a re-run with other workers, devices, batch sizes or cache paths resumes the same build.
"""

from __future__ import annotations

import dataclasses
from typing import Any

HELP = "help"
FLAG = "flag"
SHORT = "short"
OPERATIONAL = "operational"
CLI = "cli"


def opt(
    help: str,
    *,
    flag: str | None = None,
    short: str | None = None,
    operational: bool = False,
    cli: bool = True,
) -> dict[str, Any]:
    """Field metadata for an option: its help, its flag (default `--field-name`), a short flag,
    whether it is operational, and whether the CLI shows it at all."""
    return {HELP: help, FLAG: flag, SHORT: short, OPERATIONAL: operational, CLI: cli}


def option_flag(field: dataclasses.Field[Any]) -> str:
    """The command-line flag of a field: its metadata's, else `--` + the name with dashes."""
    return field.metadata.get(FLAG) or "--" + field.name.replace("_", "-")


def is_operational(field: dataclasses.Field[Any]) -> bool:
    return bool(field.metadata.get(OPERATIONAL, False))


def output_fields(obj: Any) -> dict[str, Any]:
    """The fields of a dataclass instance that decide output (operational ones left out), as plain
    JSON-able values; nested dataclasses are reduced the same way."""
    result: dict[str, Any] = {}
    for field in dataclasses.fields(obj):
        if is_operational(field):
            continue
        result[field.name] = _plain(getattr(obj, field.name))
    return result


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return output_fields(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
