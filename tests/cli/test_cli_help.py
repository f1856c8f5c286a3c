"""Every command's --help shows an example; --version; the CLI starts without the heavy libraries."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from capbuild import __version__
from capbuild.cli import app

runner = CliRunner()
HEAVY = ("torch", "transformers", "spacy", "ctranslate2", "ray", "datasets", "webdataset", "pyarrow", "numpy", "fsspec")


def _command_paths() -> list[list[str]]:
    """Every command and sub-command, generated ones included, as argument lists."""
    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        paths.append(path)
        if hasattr(command, "commands"):  # a group
            for name, sub in command.commands.items():
                walk(sub, [*path, name])

    walk(root, [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "capbuild")
def test_every_command_help_shows_an_example(path):
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example: capbuild" in result.output


def test_the_commands_include_every_builder_and_follow_up():
    names = {" ".join(p) for p in _command_paths()}
    expected = {"coco", "flickr8k", "wit", "cc", "pairs", "wap", "info", "inspect", "card", "publish", "retry",
                "mix", "demo", "train", "eval", "translate", "translate run", "translate convert"}  # fmt: skip
    assert expected <= names


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"capbuild {__version__}"


def test_pos_workers_help_does_not_claim_spacy_n_process():
    result = runner.invoke(app, ["coco", "--help"], terminal_width=200)
    line = next(line for line in result.output.splitlines() if "--pos-workers" in line)
    assert "not spaCy's n_process" in line


def test_cli_import_leaves_heavy_libraries_unloaded():
    code = (
        "import json, sys; import capbuild.cli; from capbuild.cli import make_app; make_app(); "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert loaded == []
