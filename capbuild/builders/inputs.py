"""Input files of the web builders: local paths, folders, globs and fsspec URLs (s3://, gs://, hf://, https://).

Local files are opened by pyarrow (C++ decompression); everything else through fsspec, with the
compression inferred from the name (.gz, .bz2, .zst, ... as fsspec knows them).
"""

from __future__ import annotations

import glob
import io
from pathlib import Path
from typing import BinaryIO

from capbuild.errors import InputError, MissingExtraError

GLOB_CHARS = ("*", "?", "[")
# The capbuild extra that installs each remote file system's fsspec backend.
BACKEND_EXTRAS = {"s3": ("s3fs", "s3"), "s3a": ("s3fs", "s3"), "gs": ("gcsfs", "gcs"), "gcs": ("gcsfs", "gcs")}


def is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def expand_inputs(inputs: list[str]) -> list[str]:
    """Each input as a sorted list of files: a glob is expanded, a folder lists its files.

    Raises an InputError naming the input when it matches nothing.
    """
    files: list[str] = []
    for item in inputs:
        if not is_local(item):
            require_backend(item)
        found = _expand_local(item) if is_local(item) else _expand_remote(item)
        if not found:
            raise InputError(f"input {item!r} matches no file; check the path")
        files.extend(found)
    return files


def check_inputs(inputs: list[str]) -> None:
    """Fail when an input matches no file or names a file system whose backend is not installed."""
    for item in inputs:
        if is_local(item):
            path = item.removeprefix("file://")
            if not (_expand_local(item) or Path(path).is_dir()):
                raise InputError(f"input {item!r} matches no file; check the path")
            continue
        expand_inputs([item])


def require_backend(url: str) -> None:
    """A MissingExtraError naming the install command when `url`'s fsspec backend is missing."""
    import fsspec  # loaded when an input is opened, not when the CLI starts

    protocol = url.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError as err:
        package, extra = BACKEND_EXTRAS.get(protocol, (protocol, ""))
        if extra:
            raise MissingExtraError(package, extra, f"reading {protocol}:// inputs") from err
        raise InputError(f"{url}: {err}") from err
    except ValueError as err:
        raise InputError(f"{url}: no file system knows the protocol {protocol!r}") from err


def _expand_local(item: str) -> list[str]:
    path = item.removeprefix("file://")
    if any(c in path for c in GLOB_CHARS):
        return sorted(p for p in glob.glob(path) if Path(p).is_file())
    if Path(path).is_dir():
        return sorted(str(p) for p in Path(path).iterdir() if p.is_file() and not p.name.startswith("."))
    return [path] if Path(path).is_file() else []


def _expand_remote(item: str) -> list[str]:
    from fsspec.core import url_to_fs

    fs, path = url_to_fs(item)
    if any(c in path for c in GLOB_CHARS):
        return sorted(fs.unstrip_protocol(p) for p in fs.glob(path))
    if fs.isdir(path):
        return sorted(fs.unstrip_protocol(p) for p in fs.find(path))
    return [item] if fs.exists(path) else []


def open_binary(url: str) -> BinaryIO:
    """A decompressed binary stream of one input file (close it after use)."""
    import fsspec  # loaded when a file is read, not when the CLI starts
    from fsspec.utils import infer_compression

    if is_local(url):
        path = url.removeprefix("file://")
        compression = infer_compression(path)
        import pyarrow as pa

        return pa.input_stream(path, compression=compression)  # type: ignore[return-value]
    return fsspec.open(url, "rb", compression="infer").open()


def open_text(url: str) -> io.TextIOWrapper:
    """A decompressed UTF-8 text stream (invalid bytes replaced, universal newlines)."""
    return io.TextIOWrapper(open_binary(url), encoding="utf-8", errors="replace", newline=None)


def base_name(url: str) -> str:
    """The file name of an input, without its compression suffix (for split names and source ids)."""
    from fsspec.utils import infer_compression

    name = url.rstrip("/").rsplit("/", 1)[-1]
    compression = infer_compression(name)
    return name.rsplit(".", 1)[0] if compression else name
