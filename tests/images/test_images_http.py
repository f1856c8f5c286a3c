"""The image stage against a local HTTP server: failures are counted by reason, never fatal."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from capbuild.build import BuildRequest, run_build
from capbuild.builders.coco import CocoBuilder
from capbuild.images import stage
from capbuild.images.failures import failure_reason
from capbuild.images.stage import ImageOptions
from tests.http_server import Behaviour, serve
from tests.images import jpeg_bytes, write_coco_for_urls


@pytest.mark.slow
def test_shards_hold_exactly_the_good_images(tmp_path, monkeypatch):
    def no_rewrite(*args):
        raise AssertionError("img2dataset's workers must write the shards in table order themselves")

    monkeypatch.setattr(stage, "rewrite_shard", no_rewrite)
    site = tmp_path / "site"
    site.mkdir()
    good = [f"good{i}.jpg" for i in range(6)]
    for i, name in enumerate(good):
        (site / name).write_bytes(jpeg_bytes((40 * i, 100, 200)))
    (site / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 20)
    (site / "huge.jpg").write_bytes(jpeg_bytes((1, 2, 3), size=(400, 300)))
    (site / "slow.jpg").write_bytes(jpeg_bytes((9, 9, 9)))
    (site / "broken.jpg").write_bytes(jpeg_bytes((9, 9, 9)))
    behaviour = Behaviour(root=site, slow={"slow.jpg": 4.0}, status={"broken.jpg": 500})
    with serve(behaviour) as base:
        names = [*good[:3], "missing.jpg", "corrupt.jpg", "huge.jpg", "slow.jpg", "broken.jpg", *good[3:]]
        captions = write_coco_for_urls(tmp_path / "captions.json", [f"{base}/{n}" for n in names])
        options = ImageOptions(image_size=32, shard_size=5, threads=4, timeout=1, max_image_pixels=200 * 200)
        manifest = run_build(BuildRequest(CocoBuilder(inputs=[captions]), tmp_path / "out", images=options))
    images = manifest["counts"]["images"]
    assert images["failed"] == {
        "http_404": 1,
        "corrupt_image": 1,
        "image_too_large": 1,
        "timeout": 1,
        "http_500": 1,
    }
    assert images["success"] == 6 and images["attempted"] == 11
    samples = list(wds.WebDataset(sorted(str(p) for p in (tmp_path / "out/shards").glob("*.tar")), shardshuffle=False))
    assert sorted(json.loads(s["json"])["url"].rsplit("/", 1)[1] for s in samples) == sorted(good)
    parquets = sorted((tmp_path / "out/shards").glob("*.parquet"))
    statuses = pa.concat_tables(pq.read_table(p, columns=["key", "status"]) for p in parquets).to_pylist()
    assert len(statuses) == 11 and sum(s["status"] == "success" for s in statuses) == 6


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("HTTP Error 404: Not Found", "http_404"),
        ("HTTP Error 429: Too Many Requests", "http_429"),
        ("<urlopen error [Errno 2] No such file or directory: '/x.jpg'>", "missing_file"),
        ("The read operation timed out", "timeout"),
        ("<urlopen error timed out>", "timeout"),
        ("Image decoding error", "corrupt_image"),
        ("image area too large", "image_too_large"),
        ("<urlopen error [Errno 111] Connection refused>", "connection_refused"),
        ("Use of image disallowed by X-Robots-Tag directive", "disallowed_by_x_robots_tag"),
        ("something new", "other"),
        (None, "unknown"),
    ],
)
def test_failure_reasons(message, reason):
    assert failure_reason(message) == reason
