"""Issue 12's stories, tried as a new user would: each one as a test of the command line."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass

import pyarrow.parquet as pq
import pytest
from extras import has_extra
from typer.testing import CliRunner

from capbuild.builders.base import Builder, register, unregister
from capbuild.cards.publish import public_records
from capbuild.cli import app, make_app
from tests.wit_files import wit_record, wit_text, write_wit

runner = CliRunner()


@pytest.fixture
def coco_mini(realdata):
    return realdata / "coco" / "coco_mini_captions_train2017.json"


def test_missing_extra_hint_reaches_the_terminal_whole(monkeypatch, tmp_path, coco_mini):
    """Story 1: the install hint keeps its [pos] (no markup), exit code 2, nothing written."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "spacy" else real(name, *a))
    out = tmp_path / "it-wit"
    result = runner.invoke(app, ["coco", str(coco_mini), "--lang", "fr", "--filter", "propn=0.8", "--out", str(out)])
    assert result.exit_code == 2
    assert "pip install 'capbuild[pos]'" in result.output
    assert "pip install -e '.[pos]'" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_typo_in_the_input_writes_nothing_and_the_fix_runs(tmp_path, coco_mini):
    """Story 2: a wrong input fails before --out is created; the corrected command then builds."""
    out = tmp_path / "coco"
    typo = str(coco_mini).replace(".json", ".jsn")
    result = runner.invoke(app, ["coco", "--input", typo, "--no-images", "--out", str(out)])
    assert result.exit_code == 2 and "matches no file" in result.output
    assert not out.exists()
    result = runner.invoke(app, ["coco", "--input", str(coco_mini), "--no-images", "--out", str(out)])
    assert result.exit_code == 0, result.output


def test_a_build_that_stopped_before_its_table_does_not_block_the_next(tmp_path, coco_mini):
    """Story 2, later failure: a file that exists but is no COCO file leaves only a manifest; the corrected
    command reuses the folder without --overwrite and says so."""
    bad = tmp_path / "captions.json"
    bad.write_text('{"info": {}}', encoding="utf-8")
    out = tmp_path / "coco"
    result = runner.invoke(app, ["coco", str(bad), "--no-images", "--out", str(out)])
    assert result.exit_code == 2 and "not a COCO captions file" in result.output
    assert (out / "manifest.json").exists()
    result = runner.invoke(app, ["coco", str(coco_mini), "--no-images", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "held only the manifest" in result.output
    assert pq.read_table(out / "captions").num_rows > 0


def test_inputs_as_arguments_take_the_shells_expansion(tmp_path):
    """Story 5: `capbuild wit wit_v1.*.tsv.gz --lang it` with the glob expanded by the shell."""
    files = [
        write_wit(tmp_path / f"wit_v1.train.all-0000{n}-of-00002.tsv.gz", wit_text([wit_record("it", n)]))
        for n in range(2)
    ]
    out = tmp_path / "it-wit"
    result = runner.invoke(app, ["wit", *map(str, files), "--lang", "it", "--no-images", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "captions").num_rows == 2


def test_the_card_states_only_what_ran_and_uploads_no_absolute_paths(tmp_path, coco_mini):
    """Story 6: no POS options or translation limitation for a build without them; publish's card and
    manifest name inputs by file name (or relative to --root), never by this machine's paths."""
    out = tmp_path / "coco"
    result = runner.invoke(app, ["coco", str(coco_mini), "--filter", "len=3..", "--no-images", "--out", str(out)])
    assert result.exit_code == 0, result.output
    card = (out / "README.md").read_text()
    assert "pos_backend" not in card and "Filter options" not in card
    assert "Machine translation noise" not in card
    assert str(coco_mini.parent) not in card
    records = public_records(out)
    for name, data in records.items():
        assert str(coco_mini.parent) not in data.decode(), name
    assert json.loads(records["manifest.json"])["config"]["builder"]["inputs"] == [coco_mini.name]
    rooted = json.loads(public_records(out, root=coco_mini.parent.parent)["manifest.json"])
    assert rooted["config"]["builder"]["inputs"] == [f"coco/{coco_mini.name}"]
    # The local manifest keeps the full path: a resume needs it.
    assert json.loads((out / "manifest.json").read_text())["config"]["builder"]["inputs"] == [str(coco_mini)]


def test_follow_up_commands_take_the_builds_out_url(tmp_path, monkeypatch, coco_mini):
    """Story 7: `--out file:///...` and `memory://...` builds are found by info, card and inspect."""
    monkeypatch.setenv("CAPBUILD_CACHE", str(tmp_path / "cache"))
    for out in (f"file://{tmp_path / 'b'}", "memory://capbuild-stories/b"):
        result = runner.invoke(app, ["coco", str(coco_mini), "--no-images", "--out", out])
        assert result.exit_code == 0, result.output
        assert f"capbuild info {out}" in result.output
        for command in (["info", out], ["card", out], ["inspect", out]):
            result = runner.invoke(app, command)
            assert result.exit_code == 0, (command, result.output)


def test_a_missing_images_folder_fails_before_writing(tmp_path, coco_mini):
    """Story 8: --images that does not exist, or holds none of the first rows' files, is an error."""
    out = tmp_path / "coco"
    result = runner.invoke(app, ["coco", str(coco_mini), "--images", str(tmp_path / "nope"), "--out", str(out)])
    assert result.exit_code == 2 and "is not a folder" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["coco", str(coco_mini), "--images", str(tmp_path / "empty"), "--out", str(out)])
    assert result.exit_code == 2 and "none of the first" in result.output
    assert not out.exists()


@pytest.mark.skipif(not has_extra("pos", "transformers"), reason="needs the `pos` extra (transformers)")
def test_a_missing_hf_pos_model_fails_before_writing(tmp_path, coco_mini):
    """Story 8: --pos-backend hf with no such model fails at once, before --out exists."""
    out = tmp_path / "coco"
    arguments = ["coco", str(coco_mini), "--filter", "propn=0.8", "--pos-backend", "hf"]
    result = runner.invoke(app, [*arguments, "--pos-model", str(tmp_path / "no-model"), "--out", str(out)])
    assert result.exit_code == 2 and "cannot find the POS model" in result.output
    assert not out.exists()


def test_pairs_licence_and_citation_reach_the_card(tmp_path):
    """Story 8: `pairs --licence --citation FILE`; without them the card claims no licence."""
    table = tmp_path / "t.csv"
    table.write_text("url,caption\nhttps://ex.org/1.jpg,un gatto\n", encoding="utf-8")
    bib = tmp_path / "t.bib"
    bib.write_text("@misc{mine, title={My captions}}\n", encoding="utf-8")
    base = ["pairs", str(table), "--url-col", "url", "--lang", "it", "--no-images"]
    result = runner.invoke(app, [*base, "--licence", "cc-by-4.0", "--citation", str(bib), "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "a" / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "@misc{mine, title={My captions}}" in card
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    card = (tmp_path / "b" / "README.md").read_text()
    assert "No licence was given" in card and "(see ;" not in card and "```bibtex" not in card


@dataclass
class BrokenBuilder(Builder):
    name = "broken"
    summary = "A builder with a bug."
    example = "capbuild broken x.tsv --out b/"

    def rows(self):
        raise ValueError("a bug, not a user error")
        yield


def test_an_unexpected_error_keeps_its_traceback(tmp_path):
    """Story 10: a ValueError that is no CapbuildError is a bug: exit code 1 and the exception itself."""
    table = tmp_path / "x.tsv"
    table.write_text("x\n", encoding="utf-8")
    register(BrokenBuilder)
    try:
        result = runner.invoke(make_app(), ["broken", str(table), "--no-images", "--out", str(tmp_path / "b")])
    finally:
        unregister("broken")
    assert result.exit_code == 1
    assert isinstance(result.exception, ValueError) and "a bug" in str(result.exception)
