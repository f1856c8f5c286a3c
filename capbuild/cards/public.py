"""What leaves the build machine: the manifest with local paths made relative to a root the user
names, or reduced to file names. The local manifest keeps the full paths (a resume needs them)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

# A filter spec or option whose argument is a path: NAME=/abs/path.
SPEC_WITH_PATH = re.compile(r"^(?P<name>[\w-]+=)(?P<path>(?:file://)?/.*)$")


def public_manifest(manifest: dict[str, Any], root: Path | None = None) -> dict[str, Any]:
    """A copy of `manifest` with every absolute local path (or file:// URL) made public."""
    return _walk(manifest, root)


def public_path(text: str, root: Path | None = None) -> str:
    """`text` relative to `root` when it lies under it, else its file name; other strings unchanged."""
    path = text.removeprefix("file://")
    if not _is_absolute(path):
        match = SPEC_WITH_PATH.match(text)
        return match["name"] + public_path(match["path"], root) if match else text
    if root is not None:
        try:
            return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return PurePosixPath(path.replace("\\", "/")).name or path


def _is_absolute(path: str) -> bool:
    return path.startswith("/") or PureWindowsPath(path).is_absolute()


def _walk(value: Any, root: Path | None) -> Any:
    if isinstance(value, dict):
        return {k: _walk(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, root) for v in value]
    if isinstance(value, str):
        return public_path(value, root)
    return value
