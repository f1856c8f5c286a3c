"""A build killed with SIGKILL in the image stage resumes and ends with the samples of a clean build."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.http_server import Behaviour, serve
from tests.images import jpeg_bytes, write_coco_for_urls

pytestmark = pytest.mark.slow
CAPBUILD = [sys.executable, "-m", "capbuild"]


def _command(captions: Path, out: Path) -> list[str]:
    return [*CAPBUILD, "coco", "--input", str(captions), "--out", str(out), "--image-size", "32",
            "--shard-size", "4", "--threads", "1", "--processes", "1", "--filter", "dedup"]  # fmt: skip


def _tars(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "shards").glob("*.tar"))}


def test_sigkill_during_images_then_rerun_equals_a_clean_build(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    for i in range(24):
        (site / f"{i}.jpg").write_bytes(jpeg_bytes((10 * i, 80, 160)))
    behaviour = Behaviour(root=site, delay=0.25)
    with serve(behaviour) as base:
        captions = write_coco_for_urls(tmp_path / "captions.json", [f"{base}/{i}.jpg" for i in range(24)])
        killed = tmp_path / "killed"
        process = subprocess.Popen(_command(captions, killed), start_new_session=True, stderr=subprocess.DEVNULL)
        raw = killed / ".work" / "images" / "raw"
        deadline = time.monotonic() + 120
        while not list(raw.glob("*_stats.json")) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        finished_before_kill = len(list(raw.glob("*_stats.json")))
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        assert 1 <= finished_before_kill < 6, "the kill should land inside the image stage"
        requests_before = len(behaviour.requests)

        subprocess.run(_command(captions, killed), check=True, capture_output=True)
        resumed_requests = len(behaviour.requests) - requests_before
        clean = tmp_path / "clean"
        subprocess.run(_command(captions, clean), check=True, capture_output=True)

    assert resumed_requests <= 24 - 4 * finished_before_kill, "finished shards must not be downloaded again"
    assert _tars(killed) == _tars(clean)
    assert len(_tars(clean)) == 6
    assert (killed / "shards" / "sizes.json").read_text() == (clean / "shards" / "sizes.json").read_text()
