"""`pairs`: any table of image URLs or paths with captions, in TSV, CSV, JSONL or parquet."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from capbuild.builders.pairs import PairsBuilder
from capbuild.errors import CapbuildError


def test_clip_italian_jsonl(realdata, tmp_path):
    source = realdata / "translated" / "it_coco_wit" / "clip_italian_test_file.jsonl"
    images = tmp_path / "images"
    images.mkdir()
    (images / "COCO_train2014_000000318556.jpg").write_bytes(b"jpeg")
    builder = PairsBuilder(lang="it", inputs=[str(source)], path_col="image_path", caption_col="captions",
                           image_dirs=[images])  # fmt: skip
    rows = list(builder.rows())
    expected = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == len(expected) == 10 and builder.skipped == {}
    assert [r["captions"] for r in rows] == [[c.strip() for c in e["captions"]] for e in expected]
    assert {r["lang"] for r in rows} == {"it"}
    # Absolute paths of the authors' machines are looked up by file name in --images.
    coco = next(r for r in rows if "318556" in r["image_url"])
    assert coco["image_url"] == (images / "COCO_train2014_000000318556.jpg").as_uri()
    assert len(coco["captions"]) == 5


def test_csv_with_list_cells_and_meta(tmp_path):
    path = tmp_path / "scraped.csv"
    path.write_text(
        "id,url,caption,site\n"
        'a1,https://ex.org/1.jpg,"[""un gatto"", ""un gatto nero""]",ex.org\n'
        "a2,https://ex.org/2.png,\"['una casa', 'una casa rossa']\",ex.org\n"
        'a3,https://ex.org/3.jpg,"una frase, con virgola",\n'
        "a4,https://ex.org/4.svg,un disegno,ex.org\n"
        "a5,ftp://ex.org/5.jpg,un file,ex.org\n"
        "a6,https://ex.org/6.jpg,,ex.org\n"
        "a7,https://ex.org/7.jpg\n",
        encoding="utf-8",
    )
    builder = PairsBuilder(lang="it", inputs=[str(path)], url_col="url", id_col="id")
    rows = list(builder.rows())
    assert [(r["source_id"], r["captions"]) for r in rows] == [
        ("a1", ["un gatto", "un gatto nero"]),
        ("a2", ["una casa", "una casa rossa"]),
        ("a3", ["una frase, con virgola"]),
    ]
    assert json.loads(rows[0]["meta"]) == {"site": "ex.org"} and json.loads(rows[2]["meta"]) == {}
    assert builder.skipped == {"mime image/svg+xml": 1, "not_a_url": 1, "empty_caption": 1, "malformed_row": 1}


def test_tsv_with_relative_paths_and_parquet_with_list_column(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "x.jpg").write_bytes(b"jpeg")
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("path\tcaption\nimg/x.jpg\tuna foto\n", encoding="utf-8")
    rows = list(PairsBuilder(lang="it", inputs=[str(tsv)], path_col="path").rows())
    assert rows[0]["image_url"] == (tmp_path / "img" / "x.jpg").as_uri()
    assert rows[0]["source_id"] == "pairs.tsv:0"

    table = pa.table({"link": ["https://ex.org/1.jpg", "https://ex.org/2.jpg"], "texts": [["uno", " due "], []]})
    pq.write_table(table, tmp_path / "pairs.parquet")
    builder = PairsBuilder(lang="it", inputs=[str(tmp_path / "pairs.parquet")], url_col="link", caption_col="texts",
                           source="my-scrape")  # fmt: skip
    rows = list(builder.rows())
    assert [r["captions"] for r in rows] == [["uno", "due"]] and builder.skipped == {"empty_caption": 1}
    assert rows[0]["source"] == "my-scrape" and builder.info.name == "my-scrape"


def test_jsonl_with_a_broken_line_and_a_headerless_tsv(tmp_path):
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text('{"u": "https://ex.org/1.jpg", "c": "uno"}\n{"u": "https://ex.org/2.jpg", "c": \n[1, 2]\n'
                     '{"u": "https://ex.org/3.jpg", "c": "tre"}\n', encoding="utf-8")  # fmt: skip
    builder = PairsBuilder(lang="it", inputs=[str(jsonl)], url_col="u", caption_col="c")
    assert [r["caption"] for r in builder.rows()] == ["uno", "tre"]
    assert builder.skipped == {"malformed_json_line": 2}
    tsv = tmp_path / "noheader.tsv"
    tsv.write_text("https://ex.org/1.jpg\tuno\n", encoding="utf-8")
    rows = list(PairsBuilder(lang="it", inputs=[str(tsv)], url_col="u", caption_col="c", columns=["u", "c"]).rows())
    assert rows[0]["caption"] == "uno"


def test_clear_errors(tmp_path):
    with pytest.raises(CapbuildError, match="exactly one of --url-col"):
        PairsBuilder(lang="it", inputs=["x.csv"])
    path = tmp_path / "t.csv"
    path.write_text("image,text\nhttps://ex.org/1.jpg,uno\n", encoding="utf-8")
    with pytest.raises(CapbuildError, match="no column 'url'"):
        list(PairsBuilder(lang="it", inputs=[str(path)], url_col="url", caption_col="text").rows())
    (tmp_path / "t.xlsx").write_bytes(b"PK")
    with pytest.raises(CapbuildError, match="--format"):
        list(PairsBuilder(lang="it", inputs=[str(tmp_path / "t.xlsx")], url_col="url").rows())
