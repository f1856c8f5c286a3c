"""`--executor ray`: the image filters' embedding pass on Ray actors gives what the pass in process
gives (the same kept and dropped samples, the same scores within float rounding), and a re-run reuses
the actors' files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.extras import require_extra

require_extra("scale")
require_extra("train", "torch", "transformers")
pytest.importorskip("faiss", reason="the image filters need faiss-cpu: pip install 'capbuild[imagefilters]'")

import ray  # noqa: E402

from capbuild.cli import app  # noqa: E402
from capbuild.imagefilters import ImageFilterOptions, run_image_filters  # noqa: E402
from capbuild.imagefilters.embed import matrix  # noqa: E402
from capbuild.stages.text.executors import ExecutorOptions  # noqa: E402
from tests.dual_encoders import save_clip  # noqa: E402
from tests.imagefilter_data import build, write_coco, write_pictures  # noqa: E402

pytestmark = pytest.mark.slow
SPECS = ["phash=6", "clip_score=0.18"]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 CPUs for the module (the scorer reuses it, and leaves it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imagefilters-ray")
    build(root / "build", write_coco(root / "site", write_pictures(root / "site")))
    return root / "build"


def samples(folder: Path) -> dict[str, dict]:
    import webdataset as wds

    tars = sorted(str(p) for p in folder.glob("*.tar"))
    return {s["__key__"]: json.loads(s["json"]) for s in wds.WebDataset(tars, shardshuffle=False)}


def image_embeddings(out: Path) -> np.ndarray:
    import pyarrow.parquet as pq

    paths = sorted((out / "embeddings").glob("*.parquet"))
    return np.concatenate([matrix(pq.read_table(p)["image_embedding"])[0] for p in paths]).astype(np.float32)


def test_the_embedding_pass_on_ray_actors_decides_as_the_pass_in_process(built, tmp_path, local_ray):
    clip = str(save_clip(tmp_path / "clip"))
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    shutil.copytree(built, local)
    shutil.copytree(built, on_ray)
    reference = run_image_filters(local, SPECS, clip, ImageFilterOptions(batch_size=8, workers=0))

    command = ["image-filter", str(on_ray), *[a for s in SPECS for a in ("--image-filter", s)], "--score-model", clip]
    options = ["--score-batch-size", "8", "--score-workers", "0", "--executor", "ray", "--ray-workers", "2"]
    result = CliRunner().invoke(app, [*command, *options])
    assert result.exit_code == 0, result.output
    assert "embedding on 2 Ray actor(s)" in result.output

    manifest = json.loads((on_ray / "manifest.json").read_text())
    [record], [expected] = manifest["counts"]["image_filters"], reference["counts"]["image_filters"]
    assert record["score_model"] == expected["score_model"]  # the same model, named and fingerprinted alike
    assert record["embedding_pass"] == expected["embedding_pass"]
    assert record["embedding_pass"] == {"reused_shards": 0, "embedded_shards": 4, "undecodable": 0}
    assert record["filters"] == expected["filters"] and record["filters"][1]["dropped"] > 0
    kept, kept_here = samples(on_ray / "shards"), samples(local / "shards")
    assert list(kept) == list(kept_here)
    assert set(samples(on_ray / "rejected" / "images")) == set(samples(local / "rejected" / "images"))
    assert all(abs(kept[key]["clip_score"] - meta["clip_score"]) < 1e-3 for key, meta in kept_here.items())
    np.testing.assert_allclose(image_embeddings(on_ray), image_embeddings(local), atol=2e-3)

    # Another filter on the same build and model: the actors' files are reused, nothing is embedded.
    again = run_image_filters(
        on_ray, ["near_dup=0.9995"], clip, ImageFilterOptions(batch_size=8, workers=0), ExecutorOptions("ray", None, 2)
    )
    assert again["counts"]["image_filters"][-1]["embedding_pass"] == {"reused_shards": 4, "embedded_shards": 0}
