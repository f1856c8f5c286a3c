"""Conceptual Captions: the real CC3M lines, the CC12M layout, broken lines, and a build over HTTP."""

from __future__ import annotations

import json

import pytest
import webdataset as wds
from typer.testing import CliRunner

from capbuild.builders.cc import ConceptualCaptionsBuilder
from capbuild.cli import app
from tests.http_server import Behaviour, serve
from tests.images import jpeg_bytes

CC3M = "cc3m/Validation_GCC-1.1.0-Validation.first100.tsv"


def _real_lines(realdata) -> list[tuple[str, str]]:
    lines = (realdata / CC3M).read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines]  # type: ignore[misc]


def test_real_cc3m_lines(realdata):
    builder = ConceptualCaptionsBuilder(inputs=[str(realdata / CC3M)])
    rows = list(builder.rows())
    expected = _real_lines(realdata)
    assert len(rows) == len(expected) == 100 and builder.skipped == {}
    assert [(r["caption"], r["image_url"]) for r in rows] == [(c.strip(), u.strip()) for c, u in expected]
    assert rows[0]["source_id"] == "cc3m:val:0" and rows[99]["source_id"] == "cc3m:val:99"
    assert {r["split"] for r in rows} == {"val"} and {r["lang"] for r in rows} == {"en"}


def test_cc12m_layout_and_broken_lines(tmp_path):
    path = tmp_path / "cc12m.tsv"
    path.write_text(
        "https://example.org/a.jpg\ta <PERSON> on a bike\n"
        "\n"
        "no tab on this line\n"
        "https://example.org/b.jpg\t   \n"
        "not a url\tstill not a url\n"
        "https://example.org/c.jpg\ta red barn\n",
        encoding="utf-8",
    )
    builder = ConceptualCaptionsBuilder(inputs=[str(path)])
    rows = list(builder.rows())
    assert [(r["source_id"], r["caption"]) for r in rows] == [
        ("cc12m:train:0", "a <PERSON> on a bike"),
        ("cc12m:train:5", "a red barn"),
    ]
    assert builder.skipped == {"empty_line": 1, "malformed_line": 1, "empty_caption": 1, "no_image_url": 1}


def test_cc_is_english():
    with pytest.raises(ValueError, match="English"):
        ConceptualCaptionsBuilder(lang="it", inputs=["x.tsv"])


@pytest.mark.slow
def test_real_lines_over_http_then_retry(realdata, tmp_path):
    """Shards hold exactly the good images; `capbuild retry` then recovers the transient failures
    (bare 503s on the first attempt) and tries again the 500 and the stall, never the 404, the
    corrupt image or the X-Robots-Tag refusal."""
    site = tmp_path / "site"
    site.mkdir()
    lines = _real_lines(realdata)[:12]
    bad = {2: "missing", 4: "server_error", 6: "corrupt", 8: "noai", 10: "stall"}
    for i in range(len(lines)):
        body = b"\xff\xd8\xff\xe0 truncated jpeg" if bad.get(i) == "corrupt" else jpeg_bytes((20 * i, 90, 160))
        if bad.get(i) != "missing":
            (site / f"{i}.jpg").write_bytes(body)
    behaviour = Behaviour(
        root=site,
        status={"4.jpg": 500},
        headers={"8.jpg": {"X-Robots-Tag": "noai"}},
        slow={"10.jpg": 4.0},
        fail_first={"1.jpg": 503, "9.jpg": 503},
    )
    out = tmp_path / "out"
    runner = CliRunner()
    with serve(behaviour) as base:
        tsv = tmp_path / "Validation_GCC-1.1.0-Validation.tsv"
        tsv.write_text("".join(f"{c}\t{base}/{i}.jpg\n" for i, (c, _) in enumerate(lines)), encoding="utf-8")
        build = runner.invoke(app, ["cc", "--input", str(tsv), "--out", str(out), "--image-size", "32",
                                    "--shard-size", "5", "--threads", "4", "--timeout", "1",
                                    "--user-agent", "capbuild-test-bot"])  # fmt: skip
        assert build.exit_code == 0, build.output
        first = json.loads((out / "manifest.json").read_text())["counts"]["images"]
        first_samples = _samples(out)
        assert f"\n{len(first_samples)} image-caption pairs" in (out / "README.md").read_text()
        retried = runner.invoke(app, ["retry", str(out), "--timeout", "1"])
        assert retried.exit_code == 0, retried.output
    permanent = {"http_404": 1, "corrupt_image": 1, "disallowed_by_x_robots_tag": 1}
    assert first["failed"] == {**permanent, "http_500": 1, "timeout": 1, "http_503": 2}
    assert first["per_shard"]["00000.tar"] == {
        "attempted": 5, "success": 2, "success_rate": 0.4, "failed": {"http_404": 1, "http_500": 1, "http_503": 1},
    }  # fmt: skip
    good = [i for i in range(len(lines)) if i not in bad]
    assert sorted(first_samples) == sorted(f"{i}.jpg" for i in good if i not in (1, 9))
    assert {s["txt"] for s in first_samples.values()} == {lines[i][0].strip() for i in good if i not in (1, 9)}

    for name, count in (("2.jpg", 1), ("6.jpg", 1), ("8.jpg", 1), ("1.jpg", 2), ("9.jpg", 2), ("4.jpg", 2)):
        assert behaviour.requests.count(name) == count, name
    images = json.loads((out / "manifest.json").read_text())["counts"]["images"]
    record = images["retries"][0]
    assert record["attempted"] == 4 and record["recovered"] == 2
    # The retry fetched as the build did: its user agent and threads, with the timeout given again.
    assert record["options"]["user_agent_token"] == "capbuild-test-bot" and record["options"]["threads"] == 4
    assert record["after"] == {"success": len(good), "failed": {**permanent, "http_500": 1, "timeout": 1}}
    assert images["success"] == len(good) and images["failed"] == record["after"]["failed"]
    assert sorted(_samples(out)) == sorted(f"{i}.jpg" for i in good)
    sizes = json.loads((out / "shards" / "sizes.json").read_text())
    assert sum(sizes.values()) == len(good) and len(sizes) == 4
    assert f"\n{len(good)} image-caption pairs" in (out / "README.md").read_text(), "the card counts recovered images"


def _samples(out) -> dict[str, dict]:
    """URL file name -> sample, over every shard of the build."""
    shards = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    samples = {}
    for sample in wds.WebDataset(shards, shardshuffle=False):
        name = json.loads(sample["json"])["url"].rsplit("/", 1)[1]
        samples[name] = {"txt": sample["txt"].decode(), "key": sample["__key__"]}
    return samples
