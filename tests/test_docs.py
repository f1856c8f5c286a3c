"""The docs match the program: every option `--help` shows is documented, and every example in
README.md and docs/*.md runs as written on the sample data (or says it needs the user's own data).

Examples live in fenced ```sh and ```python blocks. A block whose first line is `# your own data: ...`
needs files, models or machines the project does not ship and is not run; `# install` blocks are not
run either. Every other block runs here in a fresh folder (```sh command by command, ```python as a
script): paths under `../shared/realdata` (relative to the project) point at the real sample files,
outputs go to tmp_path.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from capbuild.builders.base import builders
from capbuild.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REALDATA_PREFIX = "../shared/realdata"
NOT_RUN = ("# your own data", "# install")
FENCE = re.compile(r"^```(?P<info>[^\n]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
# Absolute paths of a machine: the docs name files relative to the project instead.
MACHINE_PATHS = re.compile(r"(?<![\w.~/])/(?:work|home|Users|root|mnt|opt)/\w")

runner = CliRunner()


@dataclass(frozen=True)
class Block:
    """One fenced ```sh block of a page."""

    page: Path
    line: int
    body: str

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        first = self.body.lstrip().splitlines()[0] if self.body.strip() else ""
        return not first.startswith(NOT_RUN)

    def commands(self) -> list[list[str]]:
        """The block's commands as argument lists (continuation lines joined, comments dropped)."""
        text = self.body.replace("\\\n", " ")
        return [args for line in text.splitlines() if (args := shlex.split(line, comments=True))]

    @property
    def slow(self) -> bool:
        """A build that makes shards (or the demo) takes tens of seconds; caption-table builds do not."""
        names = set(builders())
        return any(
            args[1:2] == ["demo"] or (args[1:2] and args[1] in names and "--no-images" not in args)
            for args in self.commands()
        )


def _blocks(info: str = "sh") -> list[Block]:
    blocks = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            if match["info"].strip() == info:
                blocks.append(Block(page, text.count("\n", 0, match.start()) + 1, match["body"]))
    return blocks


def _docs_text() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in PAGES)


def _commands() -> list[tuple[str, object]]:
    """Every command and sub-command of `capbuild` (generated ones included) with its click command."""
    found: list[tuple[str, object]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append((" ".join(["capbuild", *path]), command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def _long_flags(command: object) -> list[str]:
    flags = []
    for param in command.params:  # type: ignore[attr-defined]
        if param.param_type_name == "option" and not param.hidden:
            flags += [f for f in (*param.opts, *param.secondary_opts) if f.startswith("--") and f != "--help"]
    return flags


@pytest.mark.parametrize(("name", "command"), _commands(), ids=[name for name, _ in _commands()])
def test_every_option_help_shows_is_documented(name, command):
    docs = _docs_text()
    missing = [f for f in _long_flags(command) if not re.search(re.escape(f) + r"(?![\w-])", docs)]
    assert not missing, f"{name}: options in --help that README.md and docs/*.md never mention: {missing}"


def _param(block: Block) -> object:
    marks = [pytest.mark.slow] if block.slow else []
    return pytest.param(block, id=block.name, marks=marks)


@pytest.mark.parametrize("block", [_param(b) for b in _blocks() if b.runs])
def test_every_sample_data_example_runs_as_written(block, tmp_path, monkeypatch, request):
    realdata = request.getfixturevalue("realdata") if REALDATA_PREFIX in block.body else None
    monkeypatch.chdir(tmp_path)
    for args in block.commands():
        assert args[0] == "capbuild", (
            f"{block.name}: `{shlex.join(args)}` is not a capbuild command; "
            "mark the block `# your own data: ...` or `# install` if it cannot run on the sample data"
        )
        if realdata is not None:
            args = [a.replace(REALDATA_PREFIX, str(realdata)) for a in args]
        result = runner.invoke(app, args[1:], terminal_width=200)
        if result.exit_code == 2 and "pip install" in result.output:
            pytest.skip(f"{block.name} needs an extra that is not installed: {result.output.strip()}")
        assert result.exit_code == 0, f"{block.name}: `{shlex.join(args)}` failed:\n{result.output}"


@pytest.mark.parametrize("block", [pytest.param(b, id=b.name) for b in _blocks("python") if b.runs])
def test_every_sample_data_python_example_runs_as_written(block, tmp_path, request):
    code = block.body
    if REALDATA_PREFIX in code:
        code = code.replace(REALDATA_PREFIX, str(request.getfixturevalue("realdata")))
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    if result.returncode != 0 and "pip install" in result.stderr and "MissingExtraError" in result.stderr:
        pytest.skip(f"{block.name} needs an extra that is not installed: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, f"{block.name} failed:\n{result.stderr}"


def test_the_examples_cover_every_page_and_the_not_run_ones_say_why():
    blocks = _blocks()
    # Translation, training and clusters need models and machines the project does not ship.
    own_data_only = {ROOT / "docs" / name for name in ("translation.md", "training-and-evaluation.md", "scaling.md")}
    assert {b.page for b in blocks if b.runs} == set(PAGES) - own_data_only
    for block in [*blocks, *_blocks("python")]:
        if not block.runs:
            first = block.body.lstrip().splitlines()[0]
            assert first.startswith("# install") or len(first) > len("# your own data: "), (
                f"{block.name}: say which data the example needs"
            )


def test_every_command_example_is_in_a_sh_block():
    """An indented or otherwise fenced `capbuild ...` line would escape the example test."""
    stray = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        fenced: dict[int, str] = {}  # line number -> the info string of the fence around it
        for match in FENCE.finditer(text):
            first = text.count("\n", 0, match.start())
            for number in range(first, first + match.group(0).count("\n") + 1):
                fenced[number] = match["info"].strip()
        for number, line in enumerate(text.splitlines()):
            example = line.startswith("    ") or number in fenced or line.lstrip().startswith("$ ")
            if fenced.get(number) != "sh" and example and line.strip().startswith("capbuild "):
                stray.append(f"{page.relative_to(ROOT)}:{number + 1}: {line.strip()}")
    assert not stray, "command examples outside ```sh blocks:\n" + "\n".join(stray)


def test_readme_opens_with_the_two_make_commands_and_links_every_page():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = FENCE.search(readme)
    assert first is not None and readme.index(first.group(0)) < readme.index("\n## ")
    assert [line.split()[:2] for line in first["body"].splitlines()] == [["make", "demo"], ["make", "test"]]
    for page in PAGES[1:]:
        assert f"](docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


@pytest.mark.parametrize("page", [*PAGES, ROOT / "BENCHMARKS.md"], ids=lambda p: p.name)
def test_pages_link_to_existing_files_and_name_no_machine_paths(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (page.parent / target).exists(), f"{page.name} links to a missing file: {target}"
    assert not MACHINE_PATHS.findall(text), f"{page.name} names absolute paths of a machine"
