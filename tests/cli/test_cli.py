"""The command line: help with examples, clear errors, info, and the demo."""

import json

import pytest
import webdataset as wds
from typer.testing import CliRunner

from capbuild.cli import app
from capbuild.stages.text.records import counts_by_spec

runner = CliRunner()


def _commands():
    return sorted(c.name or c.callback.__name__ for c in app.registered_commands)


@pytest.mark.parametrize("command", ["coco", "flickr8k", "info", "demo"])
def test_every_command_has_help_with_an_example(command):
    assert command in _commands()
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Example: capbuild" in result.output


def test_unknown_filter_is_a_clear_error(tmp_path, realdata):
    result = runner.invoke(
        app,
        [
            "coco",
            "--input",
            str(realdata / "coco/coco_mini_captions_train2017.json"),
            "--out",
            str(tmp_path),
            "--filter",
            "nope",
            "--no-images",
        ],
    )
    assert result.exit_code == 2
    assert "unknown filter 'nope'" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "manifest.json").exists(), "a bad spec must not leave a build that blocks the fixed one"


def test_no_images_build_and_info(tmp_path, realdata):
    path = realdata / "translated/it_mscoco/captions_ita_devset_validated.cut49.json"
    args = ["coco", "--input", str(path), "--lang", "it", "--out", str(tmp_path), "--filter", "len=5..", "--no-images"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    text = manifest["counts"]["text"]
    assert text["source_rows"] == 49 and text["captions"] + text["rejected"] == 49
    assert not (tmp_path / "shards").exists()
    info = runner.invoke(app, ["info", str(tmp_path)])
    assert info.exit_code == 0
    assert "len=5.." in info.output and manifest["fingerprint"] in info.output

    changed = runner.invoke(app, [*args[:-3], "--filter", "len=6..", "--no-images"])
    assert changed.exit_code == 2 and "--overwrite" in changed.output


def test_info_on_a_folder_without_a_build(tmp_path):
    result = runner.invoke(app, ["info", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest.json" in result.output


@pytest.mark.slow
def test_demo_builds_shards_from_drawn_images(tmp_path):
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "demo/manifest.json").read_text())
    assert manifest["counts"]["images"]["failed"] == {"missing_file": 1}
    assert counts_by_spec(manifest["counts"]["text"])["dedup"]["dropped"] == 1
    samples = list(wds.WebDataset(sorted(str(p) for p in (tmp_path / "demo/shards").glob("*.tar")), shardshuffle=False))
    assert len(samples) == manifest["counts"]["images"]["success"] == 22
    assert any("café" in s["txt"].decode() for s in samples)
