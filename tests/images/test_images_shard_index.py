"""The shard index: capbuild's own shards are read by the fast ustar path, anything else by tarfile,
and both give exactly what tarfile reads."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from capbuild.images.shards import plain_ustar_files, read_samples, sample_index, write_samples


def tarfile_files(tar: Path) -> list[tuple[str, int, int]]:
    with tarfile.open(tar) as source:
        return [(m.name, m.offset_data, m.size) for m in source.getmembers() if m.isfile()]


def capbuild_shard(path: Path, samples: int = 5) -> Path:
    write_samples(
        [(f"{i:016x}", {"jpg": bytes([i]) * (300 + 700 * i), "txt": f"caption {i}".encode(), "json": b"{}"})
         for i in range(samples)],
        path,
    )  # fmt: skip
    return path


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_capbuild_shards_take_the_fast_path_and_it_reads_what_tarfile_reads(tmp_path):
    shard = capbuild_shard(tmp_path / "00000.tar")
    fast = plain_ustar_files(shard)
    assert fast is not None and len(fast) == 15
    assert fast == tarfile_files(shard)
    assert [key for key, _ in sample_index(shard)] == [f"{i:016x}" for i in range(5)]
    assert [fields["txt"] for _, fields in read_samples(shard)] == [f"caption {i}".encode() for i in range(5)]


def build_tar(path: Path, fmt: int, entries: list[tuple[str, bytes | None]]) -> Path:
    with tarfile.open(path, "w", format=fmt) as tar:
        for name, data in entries:
            if data is None:
                info = tarfile.TarInfo(name)
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                add_member(tar, name, data)
    return path


@pytest.mark.parametrize(
    ("why", "fmt", "entries"),
    [
        ("a pax header (a long key)", tarfile.PAX_FORMAT, [("a.jpg", b"1"), ("k" * 120 + ".jpg", b"22")]),
        ("a GNU long name", tarfile.GNU_FORMAT, [("a.jpg", b"1"), ("k" * 120 + ".txt", b"22")]),
        ("a directory entry", tarfile.USTAR_FORMAT, [("d", None), ("a.jpg", b"1")]),
        ("a name in the prefix field", tarfile.USTAR_FORMAT, [("p" * 80 + "/" + "k" * 60 + ".jpg", b"1")]),
        ("GNU headers", tarfile.GNU_FORMAT, [("a.jpg", b"1"), ("a.txt", b"22")]),
    ],
)
def test_any_other_tar_is_left_to_tarfile_with_the_same_index(tmp_path, why, fmt, entries):
    tar = build_tar(tmp_path / "other.tar", fmt, entries)
    assert plain_ustar_files(tar) is None, why
    by_tarfile = {name: (offset, size) for name, offset, size in tarfile_files(tar)}
    indexed = {f"{key}.{ext}": where for key, members in sample_index(tar) for ext, where in members.items()}
    assert indexed == by_tarfile


def test_a_damaged_or_unfinished_tar_is_left_to_tarfile(tmp_path):
    shard = capbuild_shard(tmp_path / "00000.tar")
    data, files = shard.read_bytes(), tarfile_files(shard)

    corrupted = tmp_path / "checksum.tar"
    flipped = files[1][1] - 512 + 3  # a byte of the second member's name
    corrupted.write_bytes(data[:flipped] + bytes([data[flipped] ^ 1]) + data[flipped + 1 :])
    assert plain_ustar_files(corrupted) is None
    assert sample_index(corrupted) == sample_index_by_tarfile(corrupted)  # tarfile stops at the bad header

    cut_in_data = tmp_path / "cut.tar"
    cut_in_data.write_bytes(data[: files[4][1] + 100])  # mid-way through a member's bytes, no end marker
    assert plain_ustar_files(cut_in_data) is None
    with pytest.raises(tarfile.ReadError, match="unexpected end of data"):
        sample_index(cut_in_data)  # tarfile's verdict, as before

    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    assert plain_ustar_files(empty) is None
    with pytest.raises(tarfile.ReadError):
        sample_index(empty)


def sample_index_by_tarfile(tar: Path) -> list:
    samples: dict[str, dict[str, tuple[int, int]]] = {}
    for name, offset, size in tarfile_files(tar):
        key, _, extension = name.partition(".")
        samples.setdefault(key, {})[extension] = (offset, size)
    return list(samples.items())
