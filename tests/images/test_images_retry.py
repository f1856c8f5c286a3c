"""`capbuild retry`: which failures are transient (the end-to-end retry is in test_builders_cc.py)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from capbuild.cli import app
from capbuild.images.retry import is_transient


@pytest.mark.parametrize(
    ("reason", "transient"),
    [("timeout", True), ("http_503", True), ("http_500", True), ("http_429", True), ("connection_closed", True),
     ("http_404", False), ("http_403", False), ("corrupt_image", False), ("disallowed_by_x_robots_tag", False),
     ("missing_file", False), ("image_too_large", False)],
)  # fmt: skip
def test_transient_reasons(reason, transient):
    assert is_transient(reason) is transient


def test_retry_refuses_an_unfinished_build(tmp_path):
    result = CliRunner().invoke(app, ["retry", str(tmp_path)])
    assert result.exit_code == 2 and "no manifest.json" in result.output
