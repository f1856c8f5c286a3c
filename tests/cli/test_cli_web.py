"""The web build commands from the command line, as a user runs them (no images)."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
from typer.testing import CliRunner

from capbuild.cli import app
from tests.wit_files import wit_record, wit_text, write_wit


def test_wit_command_with_several_languages(tmp_path):
    records = [wit_record("it", 1), wit_record("ar", 2, caption_reference_description="مكتبة الإسكندرية"),
               wit_record("de", 3)]  # fmt: skip
    path = write_wit(tmp_path / "wit_v1.train.all-00000-of-00010.tsv.gz", wit_text(records))
    out = tmp_path / "out"
    arguments = ["wit", "--lang", "it,ar", "--caption-field", "all", "--input", str(path), "--no-images"]
    result = CliRunner().invoke(app, [*arguments, "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out / "captions")
    assert table["lang"].to_pylist() == ["it", "ar"]
    assert table["captions"].to_pylist()[1] == ["مكتبة الإسكندرية", "attribution 2"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["builder"] == {"inputs": [str(path)], "lang": "it,ar", "caption_field": "all"}
    assert manifest["counts"]["text"]["builder"]["skipped"] == {"language_not_selected": 1}


def test_pairs_command_errors_are_one_red_line(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("image,text\nhttps://ex.org/1.jpg,uno\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["pairs", "--input", str(table), "--lang", "it", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--url-col" in result.output
    result = CliRunner().invoke(app, ["pairs", "--input", str(table), "--url-col", "image", "--caption-col", "text",
                                      "--lang", "it", "--no-images", "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert pq.read_table(tmp_path / "o" / "captions")["caption"].to_pylist() == ["uno"]
