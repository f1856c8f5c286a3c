"""The builder registry: a source is one class; registering it yields a working `capbuild NAME`."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from capbuild.builders.base import Builder, builders, get_builder, register, unregister
from capbuild.builders.coco import CocoBuilder
from capbuild.builders.inputs import open_text
from capbuild.cli import make_app
from capbuild.errors import ConfigError
from capbuild.options import opt
from capbuild.table import make_key


@dataclass
class ToyBuilder(Builder):
    """Toy captions: one `URL<TAB>caption` a line."""

    name = "toy"
    summary = "Toy captions, one URL<TAB>caption a line."
    example = "capbuild toy toy.tsv --out toy-build/"
    licence = "cc-by-4.0"
    citation = "@misc{toy, title={Toy captions}}"
    homepage = "https://example.org/toy"
    default_lang = "it"
    upper: bool = field(default=False, metadata=opt("Upper-case the captions."))

    def rows(self):
        for path in self.input_files():
            with open_text(path) as lines:
                for number, line in enumerate(lines):
                    url, caption = line.rstrip("\n").split("\t")
                    caption = caption.upper() if self.upper else caption
                    yield self.make_row(source_id=str(number), image_url=url, captions=[caption])


@pytest.fixture
def toy():
    register(ToyBuilder)
    yield ToyBuilder
    unregister("toy")


def test_a_registered_toy_builder_is_a_working_command(toy, tmp_path):
    table = tmp_path / "toy.tsv"
    table.write_text("https://example.org/1.jpg\tun gatto\nhttps://example.org/2.jpg\tun cane\n", encoding="utf-8")
    app = make_app()
    help_text = CliRunner().invoke(app, ["toy", "--help"]).output
    assert "--upper" in help_text and "Example: capbuild toy" in help_text
    out = tmp_path / "build"
    result = CliRunner().invoke(app, ["toy", str(table), "--upper", "--no-images", "--out", str(out)])
    assert result.exit_code == 0, result.output
    captions = pq.read_table(out / "captions")
    assert captions["caption"].to_pylist() == ["UN GATTO", "UN CANE"]
    assert captions["lang"].to_pylist() == ["it", "it"]  # the builder's default language
    assert captions["key"].to_pylist()[0] == make_key("toy", "0")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["builder"] == {"inputs": [str(table)], "lang": "it", "upper": True}
    assert manifest["sources"]["toy"]["license"] == "cc-by-4.0"
    card = (out / "README.md").read_text()
    assert "Toy captions" in card and "cc-by-4.0" in card


def test_config_derives_from_the_fields():
    builder = CocoBuilder(inputs=["a.json"], image_dirs=[])
    assert builder.config() == {"inputs": ["a.json"], "lang": "en", "image_dirs": []}
    assert builder.make_row(source_id="1", captions=["x"], image_url=None)["source"] == "coco"


def test_registry_holds_the_bundled_sources():
    assert {"coco", "flickr8k", "wit", "cc", "pairs", "wap"} <= set(builders())
    assert get_builder("wap").default_lang == "ar"
    with pytest.raises(ConfigError, match="known sources"):
        get_builder("nope")


def test_a_builder_needs_inputs():
    with pytest.raises(ConfigError, match="input files"):
        CocoBuilder(inputs=[])


def test_third_party_builders_register_through_entry_points(tmp_path):
    """A package declaring a `capbuild.builders` entry point gets its command, with no capbuild file touched."""
    (tmp_path / "toyplugin.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass
            from capbuild.builders.base import Builder

            @dataclass
            class PluginBuilder(Builder):
                name = "plugin"
                summary = "A source from another package."
                example = "capbuild plugin data.tsv --out plugin-build/"

                def rows(self):
                    return iter(())
            """
        )
    )
    info = tmp_path / "toyplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toyplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[capbuild.builders]\nplugin = toyplugin:PluginBuilder\n")
    code = (
        "from typer.testing import CliRunner; from capbuild.cli import app; "
        "print(CliRunner().invoke(app, ['plugin', '--help']).output)"
    )
    env_path = f"{tmp_path}:{':'.join(sys.path)}"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": env_path})
    assert "Example: capbuild plugin data.tsv" in result.stdout, result.stderr
