"""fsspec inputs and build folders: memory:// and file:// give the build a local path gives."""

import json
import uuid

import fsspec
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from capbuild.cli import app
from capbuild.stages.text.records import plan_specs
from capbuild.storage import local_inputs
from tests.scale_helpers import write_varied_coco

runner = CliRunner()


@pytest.fixture
def memory(monkeypatch, tmp_path):
    """The in-memory file system, under a root of this test's own; capbuild's cache in tmp_path."""
    monkeypatch.setenv("CAPBUILD_CACHE", str(tmp_path / "cache"))
    fs = fsspec.filesystem("memory")
    root = f"/{uuid.uuid4().hex}"
    yield fs, root
    fs.rm(root, recursive=True)


def _build(inputs: list[str], out: str, *extra: str):
    args = ["coco", *(a for i in inputs for a in ("--input", i)), "--out", out, "--no-images", *extra]
    return runner.invoke(app, [*args, "--filter", "len=3..", "--filter", "dedup"])


def _read(fs, folder: str):
    return pq.read_table(folder, filesystem=fs)


def test_memory_input_and_output_give_the_local_build(memory, tmp_path):
    fs, root = memory
    captions = write_varied_coco(tmp_path / "captions_val2017.json", 40)
    fs.put_file(str(captions), f"{root}/src/captions_val2017.json")
    local = _build([str(captions)], str(tmp_path / "local"))
    assert local.exit_code == 0, local.output
    remote = _build([f"memory://{root}/src/*.json"], f"memory://{root}/out")
    assert remote.exit_code == 0, remote.output

    assert _read(fs, f"{root}/out/captions").equals(pq.read_table(tmp_path / "local" / "captions"))
    assert _read(fs, f"{root}/out/rejected").equals(pq.read_table(tmp_path / "local" / "rejected"))
    manifest = json.loads(fs.cat_file(f"{root}/out/manifest.json"))
    local_manifest = json.loads((tmp_path / "local" / "manifest.json").read_text())
    assert manifest["counts"]["text"] == local_manifest["counts"]["text"]
    assert set(_read(fs, f"{root}/out/captions")["split"].to_pylist()) == {"val"}, "the input's name must survive"
    assert not fs.exists(f"{root}/out/.work")
    assert f"memory://{root}/out/rejected" in remote.output.replace("\n", "")


def test_a_remote_build_reruns_from_its_mirror_and_refuses_another(memory, tmp_path):
    fs, root = memory
    fs.put_file(str(write_varied_coco(tmp_path / "captions.json", 20)), f"{root}/captions.json")
    out = f"memory://{root}/out"
    assert _build([f"memory://{root}/captions.json"], out).exit_code == 0
    before = fs.cat_file(f"{root}/out/manifest.json")
    again = _build([f"memory://{root}/captions.json"], out)
    assert again.exit_code == 0 and fs.cat_file(f"{root}/out/manifest.json") == before
    other = runner.invoke(app, ["coco", "--input", f"memory://{root}/captions.json", "--out", out, "--no-images"])
    assert other.exit_code == 2 and "--overwrite" in other.output
    replaced = runner.invoke(
        app, ["coco", "--input", f"memory://{root}/captions.json", "--out", out, "--no-images", "--overwrite"]
    )
    assert replaced.exit_code == 0, replaced.output
    assert plan_specs(json.loads(fs.cat_file(f"{root}/out/manifest.json"))) == ["clean", "unique_key"]


def test_a_remote_folder_holding_a_build_this_machine_lacks_is_refused(memory, tmp_path, monkeypatch):
    fs, root = memory
    fs.put_file(str(write_varied_coco(tmp_path / "captions.json", 10)), f"{root}/captions.json")
    assert _build([f"memory://{root}/captions.json"], f"memory://{root}/out").exit_code == 0
    monkeypatch.setenv("CAPBUILD_CACHE", str(tmp_path / "another-machine"))
    result = _build([f"memory://{root}/captions.json"], f"memory://{root}/out")
    assert result.exit_code == 2 and "does not hold" in result.output


def test_file_urls_and_local_globs_are_local_paths(tmp_path):
    for name in ("b.json", "a.json"):
        (tmp_path / name).write_text("{}")
    assert local_inputs([f"{tmp_path}/*.json"]) == [tmp_path / "a.json", tmp_path / "b.json"]
    assert local_inputs([(tmp_path / "a.json").as_uri()]) == [tmp_path / "a.json"]
    assert local_inputs(["relative/captions.json"])[0].as_posix() == "relative/captions.json"
    with pytest.raises(FileNotFoundError, match="matches no file"):
        local_inputs([f"{tmp_path}/*.tsv"])


def test_file_url_out_builds_in_place(tmp_path):
    captions = write_varied_coco(tmp_path / "captions.json", 10)
    result = _build([str(captions)], (tmp_path / "out").as_uri())
    assert result.exit_code == 0, result.output
    assert len(pq.read_table(tmp_path / "out" / "captions")) > 0


def test_a_remote_folder_input_gives_its_files(memory, realdata, tmp_path):
    fs, root = memory
    for path in sorted((realdata / "flickr8k").glob("*.txt")):
        fs.put_file(str(path), f"{root}/Flickr8k_text/{path.name}")
    images = tmp_path / "images"
    images.mkdir()
    args = ["flickr8k", "--images", str(images), "--no-images", "--filter", "len=3.."]
    local = runner.invoke(app, [*args, "--input", str(realdata / "flickr8k"), "--out", str(tmp_path / "local")])
    remote = runner.invoke(app, [*args, "--input", f"memory://{root}/Flickr8k_text", "--out", str(tmp_path / "remote")])
    assert local.exit_code == 0 and remote.exit_code == 0, remote.output
    assert pq.read_table(tmp_path / "remote" / "captions").equals(pq.read_table(tmp_path / "local" / "captions"))
