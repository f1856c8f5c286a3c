"""Conceptual Captions: the real CC3M lines, the CC12M layout, broken lines, and a build over HTTP."""

from __future__ import annotations

import json

import pytest
import webdataset as wds

from capbuild.build import BuildRequest, run_build
from capbuild.builders.cc import ConceptualCaptionsBuilder
from capbuild.images.stage import ImageOptions
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
def test_real_lines_over_http_keep_exactly_the_good_images(realdata, tmp_path):
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
    )
    with serve(behaviour) as base:
        tsv = tmp_path / "Validation_GCC-1.1.0-Validation.tsv"
        tsv.write_text("".join(f"{c}\t{base}/{i}.jpg\n" for i, (c, _) in enumerate(lines)), encoding="utf-8")
        options = ImageOptions(image_size=32, shard_size=5, threads=4, timeout=1)
        builder = ConceptualCaptionsBuilder(inputs=[str(tsv)])
        manifest = run_build(BuildRequest(builder, tmp_path / "out", images=options))
    images = manifest["counts"]["images"]
    assert images["failed"] == {
        "http_404": 1,
        "http_500": 1,
        "corrupt_image": 1,
        "disallowed_by_x_robots_tag": 1,
        "timeout": 1,
    }
    shards = sorted(str(p) for p in (tmp_path / "out" / "shards").glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    good = [i for i in range(len(lines)) if i not in bad]
    assert sorted(json.loads(s["json"])["url"].rsplit("/", 1)[1] for s in samples) == sorted(f"{i}.jpg" for i in good)
    captions = {s["txt"].decode() for s in samples}
    assert captions == {lines[i][0].strip() for i in good}
