from collections import Counter
from pathlib import Path

import pytest

from capbuild.builders.flickr8k import Flickr8kBuilder, parse_token_file
from capbuild.errors import CapbuildError


def _build(**kwargs):
    builder = Flickr8kBuilder(**kwargs)
    return list(builder.rows()), builder


@pytest.fixture
def flickr(realdata):
    return realdata / "flickr8k"


def test_real_token_file_with_splits_and_the_bogus_id(flickr, tmp_path):
    rows, builder = _build(inputs=[flickr], image_dirs=[tmp_path])
    names = {r["source_id"] for r in rows}
    assert len(rows) == 52 and len(names) == 52
    assert "2258277193_586949ec62.jpg" in names
    assert not any(n.endswith(".1") for n in names)
    assert all(len(r["captions"]) == 5 for r in rows)
    splits = Counter(r["split"] for r in rows)
    listed = {
        split: {
            line.strip() for line in (flickr / f"Flickr_8k.{name}Images.txt").read_text().splitlines() if line.strip()
        }
        for split, name in (("train", "train"), ("val", "dev"), ("test", "test"))
    }
    assert splits == Counter({s: len(v) for s, v in listed.items()}) + Counter({"unassigned": 1})
    fixed = next(r for r in rows if r["source_id"] == "2258277193_586949ec62.jpg")
    assert fixed["split"] == "unassigned"
    assert fixed["captions"][0] == "people waiting for the subway"
    assert builder.repaired == {"bogus_image_id_fixed": 5, "image_in_no_split_list": 1}
    assert fixed["image_url"] == (tmp_path / "2258277193_586949ec62.jpg").resolve().as_uri()


def test_real_arabic_captions_with_a_raw_newline(flickr, realdata, tmp_path):
    arabic = realdata / "translated" / "ar_flickr8k" / "Flickr8k.arabic.full.txt"
    rows, builder = _build(inputs=[flickr], image_dirs=[tmp_path], captions=arabic, lang="ar")
    assert len(rows) == 51  # the bogus-id image has no Arabic captions
    assert builder.skipped == {"no_translated_captions": 1}
    assert builder.repaired["continuation_line_joined"] == 1
    assert all(len(r["captions"]) == 3 and r["lang"] == "ar" and r["lang_orig"] == "en" for r in rows)
    broken = next(r for r in rows if r["source_id"] == "469021173_aa31c07108.jpg")
    assert broken["captions"][2].startswith("رجل يمشي")
    assert broken["captions"][2].endswith("عيدا في المنطقة المشجرة")
    english = parse_token_file(flickr / "Flickr8k.token.txt", Counter(), Counter())["469021173_aa31c07108.jpg"]
    assert broken["caption_orig"] == english[0][1]
    assert '"captions_en"' in broken["meta"]


def test_self_made_quirks(tmp_path):
    token = tmp_path / "Flickr8k.token.txt"
    token.write_bytes(
        b"orphan line before any id\r\n"
        b"a.jpg#1\tsecond of a\r\n"
        b"a.jpg#0\tfirst of a\r\n"
        b"b.jpg.2#0\tbogus id of b, broken\r\n"
        b"across two lines\r\n"
        b"c.jpg#0\t   \r\n"
        b"d.jpg#0\tcaf\xe9 latin-1 byte\r\n"
        b"\r\n"
    )
    (tmp_path / "Flickr_8k.trainImages.txt").write_text("a.jpg\nb.jpg\n")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"jpg")
    rows, builder = _build(inputs=[token, tmp_path / "Flickr_8k.trainImages.txt"], image_dirs=[tmp_path / "images"])
    assert [(r["source_id"], r["split"], r["captions"]) for r in rows] == [
        ("a.jpg", "train", ["first of a", "second of a"]),
        ("b.jpg", "train", ["bogus id of b, broken\nacross two lines"]),
        ("d.jpg", "unassigned", ["café latin-1 byte"]),
    ]
    assert builder.skipped == {"malformed_line": 1, "empty_caption": 1}
    assert builder.repaired == {
        "bogus_image_id_fixed": 1,
        "continuation_line_joined": 1,
        "line_not_utf8_read_as_cp1252": 1,
        "image_in_no_split_list": 1,
    }
    # b.jpg has no file on disk: it stays a row and the image stage counts it as missing.
    assert Path(rows[1]["image_url"].removeprefix("file://")).name == "b.jpg"


def test_clear_errors(tmp_path):
    with pytest.raises(CapbuildError, match=r"pass --images DIR .* or --no-images"):
        Flickr8kBuilder(inputs=[tmp_path]).check(fetch_images=True)
    with pytest.raises(CapbuildError, match="--captions"):
        Flickr8kBuilder(inputs=[tmp_path], image_dirs=[tmp_path], lang="ar")
    with pytest.raises(CapbuildError, match=r"no Flickr8k\.token\.txt"):
        _build(inputs=[tmp_path], image_dirs=[tmp_path])


def test_the_caption_table_alone_needs_no_image_folder(flickr):
    builder = Flickr8kBuilder(inputs=[flickr])
    builder.check(fetch_images=False)
    rows = list(builder.rows())
    assert len(rows) == 52 and all(r["image_url"] is None for r in rows)
    assert rows[0]["image_ref"].startswith("flickr:")


def test_cli_builds_the_caption_table_without_images_and_asks_for_them_otherwise(flickr, tmp_path):
    from typer.testing import CliRunner

    from capbuild.cli import app

    runner = CliRunner()
    fetching = runner.invoke(app, ["flickr8k", str(flickr), "--out", str(tmp_path / "with-images")])
    assert fetching.exit_code == 2 and "or --no-images" in " ".join(fetching.output.split())
    assert not (tmp_path / "with-images").exists()
    table_only = runner.invoke(app, ["flickr8k", str(flickr), "--no-images", "--out", str(tmp_path / "table")])
    assert table_only.exit_code == 0, table_only.output
    assert (tmp_path / "table" / "captions").is_dir()
