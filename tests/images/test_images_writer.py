"""Shards in table order: OrderedShardWriter and the image stage's writer give the bytes of the
post-pass rewrite of img2dataset's own shards."""

from __future__ import annotations

import importlib
import random
import tarfile

import pyarrow as pa
from img2dataset.writer import WebDatasetSampleWriter

from capbuild.images.shards import OrderedShardWriter, read_members, read_samples, sample_index, write_samples
from capbuild.images.writer import TABLE_KEY, TableOrderWriter, in_table_order, rewrite_shard, use_table_order_writer
from tests.images import jpeg_bytes

SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("caption", pa.string()),
        (TABLE_KEY, pa.string()),
        ("source", pa.string()),
        # img2dataset's input shards come from parquet, whose lists read back with items named "element".
        ("captions", pa.list_(pa.field("element", pa.string()))),
        ("propn_ratio", pa.float64()),
        ("key", pa.string()),
        ("status", pa.string()),
        ("error_message", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("original_width", pa.int32()),
        ("original_height", pa.int32()),
        ("sha256", pa.string()),
    ]
)


def _samples(count: int) -> list[tuple[bytes | None, str, str, dict]]:
    """(image, positional key, caption, meta) as img2dataset's downloader hands them to its writer;
    every third sample failed."""
    samples = []
    for i in range(count):
        failed = i % 3 == 1
        caption = f"caf\u00e9 n\u00b0{i} \u0627\u0644\u0642\u0637"
        meta = {
            "url": f"http://127.0.0.1/{i}.jpg",
            "caption": caption,
            TABLE_KEY: f"src-{1000 - i}",
            "source": "src",
            "captions": [caption, f"other {i}"],
            "propn_ratio": i / 7,
            "key": f"0000{i:04d}",
            "status": "failed_to_download" if failed else "success",
            "error_message": "HTTP Error 404: Not Found" if failed else None,
            "width": None if failed else 32,
            "height": None if failed else 32,
            "original_width": None if failed else 48,
            "original_height": None if failed else 40,
            "sha256": None if failed else f"{i:064x}",
        }
        samples.append((None if failed else jpeg_bytes((i, 2 * i, 3 * i)), f"0000{i:04d}", caption, meta))
    return samples


def _write(writer_class: type, folder, samples) -> None:
    writer = writer_class(0, str(folder), True, 5, SCHEMA, "jpg")
    for image, key, caption, meta in samples:
        writer.write(image, key, caption, dict(meta))
    writer.close()


def test_table_order_writer_gives_the_bytes_of_the_rewrite(tmp_path):
    samples = _samples(30)
    random.Random(4).shuffle(samples)  # download threads finish in any order
    raw, rewritten, direct = tmp_path / "raw", tmp_path / "rewritten", tmp_path / "direct"
    for folder in (raw, rewritten, direct):
        folder.mkdir()
    _write(WebDatasetSampleWriter, raw, samples)
    _write(TableOrderWriter, direct, samples)
    assert not in_table_order(raw / "00000.parquet") and in_table_order(direct / "00000.parquet")
    rewrite_shard(raw / "00000", rewritten / "00000")
    for name in ("00000.tar", "00000.parquet"):
        assert (direct / name).read_bytes() == (rewritten / name).read_bytes()
    assert sorted(p.name for p in direct.iterdir()) == ["00000.parquet", "00000.tar"]  # no spool or temp left
    keys = [key for key, _ in read_samples(direct / "00000.tar")]
    assert keys == [f"src-{1000 - i}" for i in range(30) if i % 3 != 1]


def test_ordered_shard_writer_sorts_and_matches_write_samples(tmp_path):
    samples = [
        (f"k{i:03d}", {"jpg": bytes([i]) * (i + 1), "txt": f"caption {i}".encode(), "json": b"{}"}) for i in range(50)
    ]
    shuffled = samples[:]
    random.Random(7).shuffle(shuffled)
    writer = OrderedShardWriter(tmp_path / "ordered.tar")
    for key, fields in shuffled:
        writer.add(key, key, fields)
    assert not (tmp_path / "ordered.tar").exists()  # nothing at the destination before close
    assert writer.close() == 50
    write_samples(samples, tmp_path / "plain.tar")
    assert (tmp_path / "ordered.tar").read_bytes() == (tmp_path / "plain.tar").read_bytes()
    assert list(read_samples(tmp_path / "ordered.tar")) == samples
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ordered.tar", "plain.tar"]


def test_shards_hold_one_header_per_member_and_the_index_reads_what_tarfile_reads(tmp_path):
    samples = [(f"k{i}", {"jpg": bytes([i]) * 700, "txt": f"caption {i}".encode()}) for i in range(4)]
    samples.append(("caf\u00e9-\u0627\u0644\u0642\u0637", {"jpg": b"\xff" * 10, "json": b"{}"}))  # needs a pax header
    write_samples(samples, tmp_path / "a.tar")
    with tarfile.open(tmp_path / "a.tar") as tar:
        members = tar.getmembers()
        by_tarfile = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    # A pax header (1 KiB more per member, twice the header parsing) only where a name needs one.
    assert [bool(m.pax_headers) for m in members] == [False] * 8 + [True, True]
    index = sample_index(tmp_path / "a.tar")
    assert [key for key, _ in index] == [key for key, _ in samples]
    with (tmp_path / "a.tar").open("rb") as handle:
        read = {f"{key}.{ext}": data for key, where in index for ext, data in read_members(handle, where).items()}
        assert read_members(handle, index[0][1], {"txt"}) == {"txt": b"caption 0"}
    assert read == by_tarfile
    assert list(read_samples(tmp_path / "a.tar")) == samples


def test_img2dataset_takes_the_table_order_writer_for_webdataset(monkeypatch):
    main = importlib.import_module("img2dataset.main")
    monkeypatch.setattr(main, "WebDatasetSampleWriter", main.WebDatasetSampleWriter)  # restored afterwards
    use_table_order_writer()
    assert main.WebDatasetSampleWriter is TableOrderWriter
