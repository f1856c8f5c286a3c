"""Reading and writing WebDataset shards sample by sample, image bytes untouched.

One mechanism for every stage that rewrites shards (the image stage's reorder and re-key, the image
filters' keep/reject split): samples are read as raw member bytes, never decoded, and written with
webdataset's TarWriter with fixed metadata, atomically (temporary file, then rename), so the same
samples always give byte-identical tars. `OrderedShardWriter` takes samples in any order (as
img2dataset's download threads finish them) and writes them in a given order when closed.
"""

from __future__ import annotations

import mmap
import os
import tarfile
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

Sample = tuple[str, dict[str, bytes]]
"""A sample: its key and its members' bytes by extension ({"jpg": ..., "txt": ..., "json": ...})."""


IndexedSample = tuple[str, dict[str, tuple[int, int]]]
"""A sample's key and where each member's bytes lie in the tar: {"jpg": (offset, size), ...}."""


def sample_index(tar: Path) -> list[IndexedSample]:
    """Every sample of a tar, in the order its first member appears, with its members' places: one
    pass over the headers, after which any sample is read with one seek per member (`read_members`)."""
    files = plain_ustar_files(tar)
    if files is None:
        with tarfile.open(tar) as source:
            files = [(m.name, m.offset_data, m.size) for m in source.getmembers() if m.isfile()]
    samples: dict[str, dict[str, tuple[int, int]]] = {}
    for name, offset, size in files:
        key, _, extension = name.partition(".")
        samples.setdefault(key, {})[extension] = (offset, size)
    return list(samples.items())


BLOCK = 512
END_BLOCK = bytes(BLOCK)
CHECKSUM_AS_SPACES = 8 * ord(" ")  # a header's checksum counts its own 8 bytes as spaces


def plain_ustar_files(tar: Path) -> list[tuple[str, int, int]] | None:
    """(name, data offset, size) of every member of a tar made of plain ustar file headers only, as
    webdataset's TarWriter writes capbuild's keys, read with wids' header parser (webdataset's indexed
    tars): about 4x faster than tarfile. None where tarfile has to judge: any other entry (pax or GNU
    headers, directories, links), a name in the prefix field, a bad checksum, an empty or unfinished tar."""
    from wids.wids_mmtar import parse_tar_header

    if tar.stat().st_size < BLOCK:
        return None
    files = []
    with tar.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        offset = 0
        while offset + BLOCK <= len(data):
            block = data[offset : offset + BLOCK]
            if block == END_BLOCK:
                return files or None  # no member at all: tarfile's verdict on an empty archive
            header = parse_tar_header(block[:500])
            plain = header.typeflag == b"0" and header.magic == b"ustar\0" and not header.prefix.strip(b"\0")
            try:
                size, checksum = octal(header.size), octal(header.chksum)
                name = header.name.split(b"\0", 1)[0].decode("ascii")
            except ValueError:
                return None
            if not plain or checksum != CHECKSUM_AS_SPACES + sum(block[:148]) + sum(block[156:]):
                return None
            files.append((name, offset + BLOCK, size))
            offset += BLOCK + -(-size // BLOCK) * BLOCK
    return None


def octal(field: bytes) -> int:
    """A ustar number field (octal digits ended by NUL or space); ValueError if it is none."""
    return int(field.split(b"\0", 1)[0].strip(b" "), 8)


def read_members(
    handle: BinaryIO, members: dict[str, tuple[int, int]], extensions: Collection[str] | None = None
) -> dict[str, bytes]:
    """The bytes of an indexed sample's members (only those `extensions` when given) from the open tar."""
    fields = {}
    for extension, (offset, size) in members.items():
        if extensions is None or extension in extensions:
            handle.seek(offset)
            fields[extension] = handle.read(size)
    return fields


def read_samples(tar: Path) -> Iterator[Sample]:
    """The samples of a tar in the order their first member appears, members as raw bytes."""
    index = sample_index(tar)
    with tar.open("rb") as handle:
        for key, members in index:
            yield key, read_members(handle, members)


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
    import webdataset as wds  # imports torch: only where shards are written

    tmp = dst.with_name(dst.name + ".tmp")
    count = 0
    with tmp.open("wb") as target:
        writer = wds.TarWriter(target, mtime=0)  # an int: a float mtime costs every member a pax header
        for key, fields in samples:
            writer.write({"__key__": key, **fields})
            count += 1
        writer.close()
    tmp.replace(dst)
    return count


class OrderedShardWriter:
    """Collects samples in any order and writes them to `dst`, sorted by an order key, on close().

    Member bytes go to a spool file beside dst as they arrive, so memory holds only offsets whatever
    the shard's size; close() reads them back in order (no decoding) through write_samples. A
    process killed before close() leaves only the spool and no tar at dst.
    """

    def __init__(self, dst: Path) -> None:
        self.dst = dst
        self._spool_path = dst.with_name(dst.name + ".spool")
        self._spool = self._spool_path.open("w+b")
        self._index: list[tuple[str, str, list[tuple[str, int, int]]]] = []
        self._offset = 0

    def add(self, order: str, key: str, fields: dict[str, bytes]) -> None:
        """Queue a sample; samples are written in ascending `order`."""
        members = []
        for extension, data in fields.items():
            self._spool.write(data)
            members.append((extension, self._offset, len(data)))
            self._offset += len(data)
        self._index.append((order, key, members))

    def close(self) -> int:
        """Write the tar (atomically) and remove the spool; returns how many samples it holds."""
        self._spool.flush()
        fd = self._spool.fileno()
        ordered = sorted(self._index, key=lambda entry: entry[0])
        samples = (
            (key, {ext: os.pread(fd, size, offset) for ext, offset, size in members}) for _, key, members in ordered
        )
        try:
            return write_samples(samples, self.dst)
        finally:
            self._spool.close()
            self._spool_path.unlink()
