"""Reading and writing WebDataset shards sample by sample, image bytes untouched.

One mechanism for every stage that rewrites shards (the image stage's reorder and re-key, the image
filters' keep/reject split): samples are read as raw member bytes, never decoded, and written with
webdataset's TarWriter with fixed metadata, atomically (temporary file, then rename), so the same
samples always give byte-identical tars.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import webdataset as wds

Sample = tuple[str, dict[str, bytes]]
"""A sample: its key and its members' bytes by extension ({"jpg": ..., "txt": ..., "json": ...})."""


def read_samples(tar: Path) -> Iterator[Sample]:
    """The samples of a tar in the order their first member appears, members as raw bytes."""
    with tarfile.open(tar) as source:
        members: dict[str, dict[str, tarfile.TarInfo]] = {}
        for member in source.getmembers():
            if not member.isfile():
                continue
            key, _, extension = member.name.partition(".")
            members.setdefault(key, {})[extension] = member
        for key, by_extension in members.items():
            yield key, {ext: source.extractfile(m).read() for ext, m in by_extension.items()}  # type: ignore[union-attr]


def stream_samples(tar: Path) -> Iterator[Sample]:
    """The samples of a tar read sequentially as a stream (members of one sample are consecutive, as
    webdataset writes them); for readers that need no random access, such as DataLoader workers."""
    with tarfile.open(tar, mode="r|") as source:
        key, fields = None, {}
        for member in source:
            if not member.isfile():
                continue
            member_key, _, extension = member.name.partition(".")
            if member_key != key and key is not None:
                yield key, fields
                fields = {}
            key = member_key
            fields[extension] = source.extractfile(member).read()  # type: ignore[union-attr]
        if key is not None:
            yield key, fields


def write_samples(samples: Iterable[Sample], dst: Path) -> int:
    """Write samples (in the given order) to dst atomically; returns how many were written."""
    tmp = dst.with_name(dst.name + ".tmp")
    count = 0
    with tmp.open("wb") as target:
        writer = wds.TarWriter(target, mtime=0.0)
        for key, fields in samples:
            writer.write({"__key__": key, **fields})
            count += 1
        writer.close()
    tmp.replace(dst)
    return count
