"""Translation (the tiny CTranslate2 model) on Ray: the local table, even when a worker is killed."""

import json
import os

import pyarrow.parquet as pq
import pytest
from extras import require_extra

import capbuild.stages.text.stage
from capbuild.build import BuildRequest, run_build
from capbuild.builders.coco import CocoBuilder
from capbuild.stages.text.executors import ExecutorOptions
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.plan import make_plan
from capbuild.stages.text.records import counts_by_spec, reports_by_spec
from tests.scale_helpers import logged_batches
from tests.translate_models import build_marian, fixture_captions

require_extra("translate")
require_extra("scale")

ray = pytest.importorskip("ray", reason="the scale extra (ray) is not installed: pip install 'capbuild[scale]'")
pytest.importorskip("ctranslate2", reason="the translate extra is not installed")
pytestmark = pytest.mark.slow

IMAGES, BATCH_ROWS = 24, 4


@pytest.fixture(scope="module")
def marian_ct2(tmp_path_factory):
    from capbuild.translate.convert import convert_model

    out = tmp_path_factory.mktemp("marian") / "ct2"
    convert_model(str(build_marian(tmp_path_factory.mktemp("marian-hf"))), out)
    return out


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _captions(path):
    captions = fixture_captions(IMAGES, seed=3)
    captions[5] = captions[1]  # dedup drops it before translation
    images = [{"id": i, "file_name": f"{i}.jpg", "coco_url": f"http://127.0.0.1:9/{i}.jpg"} for i in range(IMAGES)]
    annotations = [{"id": i, "image_id": i, "caption": c} for i, c in enumerate(captions)]
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def _build(tmp_path, name, model, executor, kill=False):
    log = tmp_path / name / "log"
    log.mkdir(parents=True)
    cache = str(tmp_path / name / "cache")
    options = TextOptions(translate=True, mt_model=str(model), mt_cache=cache, mt_progress=False)
    request = BuildRequest(
        builder=CocoBuilder(lang="en", inputs=[_captions(tmp_path / "captions.json")]),
        out=tmp_path / name / "out",
        plan=make_plan("it", ["dedup", f"slow_test=0:{log}", f"kill_once_test={int(kill)}:{log}"], [], options),
        images=None,
        executor=executor,
    )
    return request.out, run_build(request)["counts"]["text"]


def _tables(out):
    return [pq.read_table(out / name) for name in ("captions", "rejected") if (out / name).exists()]


@pytest.mark.timeout(1200)  # two builds and a Ray actor restart: minutes on a loaded 2-core machine
def test_translation_on_ray_survives_a_killed_worker(tmp_path, marian_ct2, local_ray, monkeypatch):
    monkeypatch.setattr(capbuild.stages.text.stage, "TEXT_BATCH_ROWS", BATCH_ROWS)
    local, local_counts = _build(tmp_path, "local", marian_ct2, ExecutorOptions("local"))
    ray_out, ray_counts = _build(tmp_path, "ray", marian_ct2, ExecutorOptions("ray", workers=2), kill=True)

    log = tmp_path / "ray" / "log"
    killed = int((log / "killed").read_text())  # an actor of the translation segment died mid-run
    batches = logged_batches(log)
    assert killed in {pid for pid, _, _ in batches}, "the killed actor had filtered a partition before"
    assert len({key for _, key, _ in batches}) == -(-IMAGES // BATCH_ROWS), "every partition reached the segment"

    for got, want in zip(_tables(ray_out), _tables(local), strict=True):
        assert got.equals(want)
    kept = pq.read_table(ray_out / "captions")
    assert len(set(kept["key"].to_pylist())) == len(kept) and set(kept["lang"].to_pylist()) == {"it"}
    assert list(counts_by_spec(ray_counts).values()) == list(counts_by_spec(local_counts).values())
    translate = next(name for name in reports_by_spec(local_counts) if name.startswith("translate="))
    rows_translated = reports_by_spec(local_counts)[translate]["rows_translated"]
    assert rows_translated == counts_by_spec(local_counts)[translate]["in"] > 0
    ray_batches = {pid for pid, _, _ in batches}
    assert os.getpid() not in ray_batches and len(ray_batches) >= 3  # two actors and the restarted one
