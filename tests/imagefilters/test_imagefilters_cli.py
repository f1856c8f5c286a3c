"""--image-filter on a build command, `capbuild image-filter` on a finished build, and their errors."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from capbuild.cli import app
from tests.imagefilter_data import write_coco, write_pictures

runner = CliRunner()


def test_image_filters_without_images_fail_before_writing(tmp_path, realdata):
    coco = str(realdata / "coco/coco_mini_captions_train2017.json")
    out = tmp_path / "out"
    cases = [
        (["--no-images", "--image-filter", "phash=6"], "needs the image stage"),
        (["--image-filter", "clip_score=0.2"], "need(s) --score-model"),
        (["--image-filter", "clip_score=0.2", "--score-model", str(tmp_path / "nowhere")], "not a folder"),
        (["--image-filter", "sharpness=2"], "unknown image filter"),
        (["--score-model", str(tmp_path)], "add one"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, ["coco", coco, "--out", str(out), *extra])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
        assert not out.exists()


def test_image_filter_command_needs_a_build_with_shards(tmp_path):
    result = runner.invoke(app, ["image-filter", str(tmp_path), "--image-filter", "phash=6"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    result = runner.invoke(app, ["image-filter", str(tmp_path)])
    assert result.exit_code == 2 and "at least one --image-filter" in result.output


def test_commands_with_image_filters_let_idle_openmp_threads_sleep(tmp_path, realdata, monkeypatch):
    coco = str(realdata / "coco/coco_mini_captions_train2017.json")
    commands = [
        ["image-filter", str(tmp_path), "--image-filter", "phash=6"],
        ["coco", coco, "--out", str(tmp_path / "out"), "--no-images", "--image-filter", "phash=6"],
    ]
    for command in commands:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
        runner.invoke(app, command)  # both stop at a check, after the policy is set
        assert os.environ.get("OMP_WAIT_POLICY") == "PASSIVE", command
        monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
        runner.invoke(app, command)
        assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE", "a policy the user set is kept"


@pytest.mark.slow
def test_build_with_image_filters_then_image_filter_on_it(tmp_path):
    pytest.importorskip("faiss", reason="the image filters need faiss-cpu: pip install 'capbuild[imagefilters]'")
    from tests.dual_encoders import save_clip

    clip = str(save_clip(tmp_path / "clip"))
    captions = write_coco(tmp_path / "site", write_pictures(tmp_path / "site"))
    out = tmp_path / "out"
    build = [
        "coco",
        *map(str, captions),
        "--out",
        str(out),
        "--image-size",
        "64",
        "--shard-size",
        "16",
        "--image-filter",
        "phash=6",
        "--image-filter",
        "clip_score=-1",
        "--score-model",
        clip,
        "--score-workers",
        "1",
        "--score-batch-size",
        "8",
    ]
    result = runner.invoke(app, build)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["image_filters"]["filters"] == ["phash=6", "clip_score=-1"]
    [record] = manifest["counts"]["image_filters"]
    assert [f["dropped"] for f in record["filters"]] == [10, 0] and record["kept"] == 45
    assert "## Image filters" in (out / "README.md").read_text()
    assert not (out / ".work").exists()
    assert runner.invoke(app, build).exit_code == 0  # the same command again: nothing to do
    assert len(json.loads((out / "manifest.json").read_text())["counts"]["image_filters"]) == 1
    result = runner.invoke(app, ["image-filter", str(out), "--image-filter", "near_dup=0.9995", "--score-model", clip])
    assert result.exit_code == 0, result.output
    assert "45 samples in" in result.output
    runs = json.loads((out / "manifest.json").read_text())["counts"]["image_filters"]
    assert len(runs) == 2 and runs[1]["embedding_pass"]["reused_shards"] == 4
    assert sum(json.loads((out / "shards" / "sizes.json").read_text()).values()) == runs[1]["kept"]
    info = runner.invoke(app, ["info", str(out)])
    assert info.exit_code == 0, info.output
    said = " ".join(info.output.split())  # rich wraps a table's title to the table's width
    assert "Image filters, run 1: 55 samples in, 45 kept" in said and "near_dup=0.9995" in said
