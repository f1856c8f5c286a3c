"""Inputs and build folders anywhere fsspec reaches: local paths, file://, s3://, gs://, hf://, https://.

Builders read local files, and a build resumes from its local build folder, so:
- a remote `--input` (a file, a folder or a glob) is copied once into the input cache and the builder
  is given the local copies (same base names; a copy is reused while the remote size is unchanged);
- a remote `--out` is built in a local mirror folder, then its outputs are uploaded; a re-run resumes
  from the mirror and refuses a remote folder that holds another build.
Backends: s3:// needs `capbuild[s3]` (s3fs), gs:// `capbuild[gcs]` (gcsfs), hf:// huggingface_hub
(installed with capbuild), memory:// and https:// come with fsspec.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capbuild.atomic import atomic_path
from capbuild.errors import BuildConflictError, InputError
from capbuild.layout import MANIFEST, OWNED, WORK

if TYPE_CHECKING:
    import fsspec


def cache_root() -> Path:
    """$CAPBUILD_CACHE, else $XDG_CACHE_HOME/capbuild, else ~/.cache/capbuild."""
    if os.environ.get("CAPBUILD_CACHE"):
        return Path(os.environ["CAPBUILD_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "capbuild"


def _url_to_fs(location: str | Path) -> tuple[fsspec.AbstractFileSystem, str]:
    import fsspec.core  # loaded on use: `capbuild --help` and `info` on a local build never need it

    return fsspec.core.url_to_fs(str(location))


def _is_local_fs(fs: fsspec.AbstractFileSystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def is_remote(location: str | Path) -> bool:
    """Whether `location` names something outside the local file system."""
    if "://" not in str(location):
        return False
    return not _is_local_fs(_url_to_fs(location)[0])


def local_path(location: str | Path) -> Path:
    """A local path or file:// URL as a Path."""
    if "://" not in str(location):
        return Path(location).expanduser().absolute()
    return Path(_url_to_fs(location)[1])


def local_inputs(inputs: list[str], cache: Path | None = None) -> list[Path]:
    """The builder's inputs as local paths: local ones as given (a glob expanded, sorted), remote
    ones copied into `cache` (default: CACHE_ROOT/inputs); a remote folder gives its files."""
    cache = cache or cache_root() / "inputs"
    paths: list[Path] = []
    for location in inputs:
        from fsspec.core import has_magic

        fs, path = _url_to_fs(location)
        magic = has_magic(path)
        if _is_local_fs(fs) and not magic:
            paths.append(Path(location.removeprefix("file://")))
            continue
        matches = sorted(fs.glob(path)) if magic else [path]
        if not matches:
            raise InputError(f"input {location!r} matches no file")
        if _is_local_fs(fs):
            paths.extend(Path(m) for m in matches)
            continue
        for match in matches:
            files = sorted(fs.find(match)) if fs.isdir(match) else [match]
            if not files:
                raise InputError(f"input {location!r}: {match} holds no file")
            paths.extend(_fetch(fs, f, cache) for f in files)
    return paths


def _fetch(fs: fsspec.AbstractFileSystem, path: str, cache: Path) -> Path:
    """Copy one remote file into the cache, unless a copy of the same size is already there."""
    url = fs.unstrip_protocol(path)
    target = cache / hashlib.sha256(url.encode()).hexdigest()[:16] / Path(path).name
    size = fs.size(path)
    if target.exists() and (size is None or target.stat().st_size == size):
        return target
    with atomic_path(target) as tmp:
        fs.get_file(path, str(tmp))
    return target


@contextmanager
def build_folder(out: str, overwrite: bool = False) -> Iterator[Path]:
    """The local folder to build in: `out` itself when local; for a remote `out`, a local mirror
    (CACHE_ROOT/builds/DIGEST) whose outputs are uploaded to `out` when the build succeeds."""
    if not is_remote(out):
        yield local_path(out)
        return
    fs, root = _url_to_fs(out)
    mirror = _mirror(out)
    mirror.mkdir(parents=True, exist_ok=True)
    _check_remote(fs, root, mirror, out, overwrite)
    yield mirror
    upload_build(mirror, out)


def _check_remote(fs: fsspec.AbstractFileSystem, root: str, mirror: Path, out: str, overwrite: bool) -> None:
    remote_manifest = f"{root.rstrip('/')}/{MANIFEST}"
    if overwrite or not fs.exists(remote_manifest):
        return
    remote = json.loads(fs.cat_file(remote_manifest))
    local = mirror / MANIFEST
    if not local.exists() or json.loads(local.read_text())["fingerprint"] != remote.get("fingerprint"):
        raise BuildConflictError(
            f"{out} holds a build (fingerprint {remote.get('fingerprint')}) that this machine's mirror "
            f"({mirror}) does not hold. Re-run with --overwrite to replace it, or choose another --out."
        )


def upload_build(local: Path, out: str) -> None:
    """Upload a finished build's outputs (not its work folder) to `out`, replacing what capbuild
    wrote there before."""
    fs, root = _url_to_fs(out)
    root = root.rstrip("/")
    fs.makedirs(root, exist_ok=True)
    # The manifest goes last: a remote folder with a manifest holds every output it lists.
    for name in sorted((n for n in OWNED if n != WORK), key=lambda n: n == MANIFEST):
        target = f"{root}/{name}"
        if fs.exists(target):
            fs.rm(target, recursive=True)
        source = local / name
        if source.is_dir():
            fs.put(str(source), target, recursive=True)
        elif source.exists():
            fs.put_file(str(source), target)


def read_manifest(out: str) -> dict[str, Any]:
    """The manifest of the build at `out` (path or URL), read where it is."""
    missing = InputError(f"{out} holds no {MANIFEST}: is it a capbuild build folder (a build's --out)?")
    if not is_remote(out):
        local = local_path(out) / MANIFEST
        if not local.is_file():
            raise missing
        return json.loads(local.read_bytes())
    fs, root = _url_to_fs(out)
    path = f"{root.rstrip('/')}/{MANIFEST}"
    if not fs.exists(path):
        raise missing
    return json.loads(fs.cat_file(path))


@contextmanager
def existing_build(out: str | Path, upload: bool = False) -> Iterator[Path]:
    """A finished or resumable build, as the local folder to read: `out` itself when local; for a URL, the
    local mirror, refreshed from `out` when it differs (and uploaded back after the block with `upload`)."""
    out = str(out)
    manifest = read_manifest(out)
    if not is_remote(out):
        yield local_path(out)
        return
    fs, root = _url_to_fs(out)
    root = root.rstrip("/")
    mirror = _mirror(out)
    local = mirror / MANIFEST
    if not local.exists() or json.loads(local.read_text(encoding="utf-8")) != manifest:
        for name in OWNED:
            target = mirror / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
        mirror.mkdir(parents=True, exist_ok=True)
        for name in OWNED:
            if name != WORK and fs.exists(f"{root}/{name}"):
                fs.get(f"{root}/{name}", str(mirror / name), recursive=True)
    yield mirror
    if upload:
        upload_build(mirror, out)


def _mirror(out: str) -> Path:
    return cache_root() / "builds" / hashlib.sha256(out.rstrip("/").encode()).hexdigest()[:16]
