"""Smoke test of benchmarks/image_stage_http.py's helpers (the benchmark itself is not a test)."""

from __future__ import annotations

import argparse
import importlib.util
import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from capbuild.images.stage import ImageOptions, img2dataset_arguments

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "image_stage_http.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("image_stage_http", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_server_serves_distinct_procedural_jpegs_and_404s(bench):
    images = [bench.procedural_jpeg(i) for i in range(3)]
    assert len(set(images)) == 3
    with bench.serve_images(images, threads=2, seconds=60) as base:
        body = urllib.request.urlopen(f"{base}/1.jpg", timeout=10).read()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(f"{base}/3.jpg", timeout=10)
    assert body == images[1]
    assert Image.open(io.BytesIO(body)).size == (400, 300)


def test_raw_and_capbuild_runs_get_the_same_img2dataset_options(bench, tmp_path):
    args = argparse.Namespace(processes=2, threads=8, shard_size=1000)
    raw = dict(flag.removeprefix("--").split("=", 1) for flag in bench.raw_command(tmp_path, tmp_path, args)[1:])
    command = bench.capbuild_command(tmp_path / "urls.tsv", tmp_path / "out", args, 0)
    flags = dict(zip(command[1::2], command[2::2], strict=True))
    options = ImageOptions(
        image_size=int(flags["--image-size"]),
        resize_mode=flags["--resize-mode"],
        shard_size=int(flags["--shard-size"]),
        processes=int(flags["--processes"]),
        threads=int(flags["--threads"]),
    )
    capbuild = img2dataset_arguments(tmp_path, tmp_path, options, [])
    for name in ("image_size", "resize_mode", "encode_quality", "number_sample_per_shard", "processes_count",
                 "thread_count", "timeout", "extract_exif", "enable_wandb", "output_format"):  # fmt: skip
        assert str(capbuild[name]) == raw[name], name
    assert float(raw["max_image_area"]) == capbuild["max_image_area"]
