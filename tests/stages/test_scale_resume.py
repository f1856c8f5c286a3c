"""The text stage resumes per partition per segment: after a SIGKILL, and inside a stateful filter."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import capbuild.stages.text.stage
from capbuild.builders.coco import CocoBuilder
from capbuild.stages.text.plan import make_plan
from capbuild.stages.text.records import counts_by_spec
from capbuild.stages.text.stage import run_text_stage
from tests.scale_helpers import logged_batches, write_varied_coco

ROOT = Path(__file__).resolve().parents[2]
IMAGES, BATCH_ROWS = 60, 6
PARTITIONS = -(-IMAGES // BATCH_ROWS)


def _tables(out: Path):
    return pq.read_table(out / "captions"), pq.read_table(out / "rejected")


def _text_stage(captions: Path, out: Path, specs: list[str]) -> dict:
    return run_text_stage(CocoBuilder(inputs=[captions]), make_plan("en", specs), out, out / ".work")


def test_a_stateful_filter_resumed_mid_segment_remembers_the_finished_partitions(tmp_path, monkeypatch):
    monkeypatch.setattr(capbuild.stages.text.stage, "TEXT_BATCH_ROWS", BATCH_ROWS)
    captions = write_varied_coco(tmp_path / "captions.json", IMAGES)
    specs = ["len=3..", "dedup"]
    clean = _text_stage(captions, tmp_path / "clean", specs)
    out = tmp_path / "resumed"
    _text_stage(captions, out, specs)
    dedup_counts = sorted((out / ".work" / "text" / "seg-03" / "counts").glob("*.json"))
    assert len(dedup_counts) == PARTITIONS
    for path in dedup_counts[PARTITIONS // 2 :]:  # as if killed halfway through dedup
        path.unlink()
    (out / ".work" / "text" / "seg-03" / "kept" / "part-00009.parquet").unlink()
    resumed = _text_stage(captions, out, specs)
    assert resumed == clean
    assert counts_by_spec(clean)["dedup"]["dropped"] > 0
    for got, want in zip(_tables(out), _tables(tmp_path / "clean"), strict=True):
        assert got.equals(want)


@pytest.mark.slow
def test_sigkill_during_the_text_stage_then_rerun_equals_a_clean_build(tmp_path):
    captions = write_varied_coco(tmp_path / "captions.json", IMAGES)

    def command(out: Path, log: Path, seconds: float) -> list[str]:
        filters = ["--filter", "len=3..", "--filter", f"slow_test={seconds}:{log}", "--filter", "dedup"]
        return [sys.executable, "-m", "tests.scale_helpers", "coco", "--input", str(captions), "--out", str(out),
                "--no-images", *filters]  # fmt: skip

    env = {**os.environ, "CAPBUILD_TEST_BATCH_ROWS": str(BATCH_ROWS)}
    killed, log = tmp_path / "killed", tmp_path / "log"
    process = subprocess.Popen(
        command(killed, log, 0.3), cwd=ROOT, env=env, start_new_session=True, stderr=subprocess.DEVNULL
    )
    done = killed / ".work" / "text" / "seg-02" / "counts"  # the (len, slow_test) segment
    deadline = time.monotonic() + 120
    while len(list(done.glob("*.json"))) < 3 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished_before_kill = len(list(done.glob("*.json")))
    assert 3 <= finished_before_kill < PARTITIONS, "the kill should land inside the text stage"

    subprocess.run(command(killed, log, 0.3), cwd=ROOT, env=env, check=True, capture_output=True)
    clean = tmp_path / "clean"
    subprocess.run(command(clean, tmp_path / "clean-log", 0), cwd=ROOT, env=env, check=True, capture_output=True)

    for got, want in zip(_tables(killed), _tables(clean), strict=True):
        assert got.equals(want)
    rerun_batches = [b for b in logged_batches(log) if b[0] != process.pid]
    assert len(rerun_batches) == PARTITIONS - finished_before_kill, "finished partitions must not be filtered again"
    assert not (killed / ".work").exists()
