"""WAP: the published CSV layout and the headerless caption,url one, built with the Arabic filters."""

from __future__ import annotations

import csv
import json

import pytest
import webdataset as wds

from capbuild.build import BuildRequest, run_build
from capbuild.builders.wap import WapBuilder
from capbuild.errors import CapbuildError
from capbuild.images.stage import ImageOptions
from capbuild.stages.text.plan import make_plan
from capbuild.stages.text.records import counts_by_spec
from tests.http_server import Behaviour, serve
from tests.images import jpeg_bytes

# (file name served, extension column, caption as published: diacritics, tatweel, short ones)
ENTRIES = [
    ("a.jpg", "jpg", "مَسْجِدُ قُبَاءٍ فِي المَدِينَةِ المُنَوَّرَةِ"),
    ("b.png", "png", "خريطة تُظهر مـوقع المدينة عام 1900"),
    ("c.jpg", "jpg", "قَلْعَة"),
    ("d.svg", "svg", "شعار النادي الرياضي الكبير"),
    ("e.jpeg", "jpeg", "صورة لجسر Golden Gate في سان فرانسيسكو"),
    ("f.jpg", "jpg", "نهر النيل"),
]


def _write_published(path, base: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "link", "caption", "extension"])
        for name, extension, caption in ENTRIES:
            writer.writerow([f"https://ar.wikipedia.org/wiki/{name}", f"{base}/{name}", caption, extension])


def test_published_layout_rows(tmp_path):
    path = tmp_path / "WikipediaArabicPairs(WAP).csv"
    _write_published(path, "https://upload.wikimedia.org/x")
    builder = WapBuilder(inputs=[str(path)])
    rows = list(builder.rows())
    assert [r["image_url"].rsplit("/", 1)[1] for r in rows] == ["a.jpg", "b.png", "c.jpg", "e.jpeg", "f.jpg"]
    assert builder.skipped == {"mime image/svg+xml": 1}
    assert {r["lang"] for r in rows} == {"ar"} and {r["source"] for r in rows} == {"wap"}
    assert json.loads(rows[0]["meta"]) == {"extension": "jpg", "source": "https://ar.wikipedia.org/wiki/a.jpg"}
    assert builder.info.name == "wap" and "Alhuri" in builder.info.citation


def test_headerless_caption_url_layout(tmp_path):
    path = tmp_path / "wap_download.csv"
    path.write_text('"قطة تجلس على كرسي",https://ex.org/1.jpg\n"كلب, في الحديقة",https://ex.org/2.jpg\n',
                    encoding="utf-8")  # fmt: skip
    builder = WapBuilder(inputs=[str(path)])
    rows = list(builder.rows())
    assert [(r["caption"], r["image_url"]) for r in rows] == [
        ("قطة تجلس على كرسي", "https://ex.org/1.jpg"),
        ("كلب, في الحديقة", "https://ex.org/2.jpg"),
    ]
    assert builder.repaired == {"headerless_caption_url_layout": 1}


def test_other_csv_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(CapbuildError, match="capbuild pairs"):
        list(WapBuilder(inputs=[str(path)]).rows())
    with pytest.raises(CapbuildError, match="Arabic"):
        WapBuilder(lang="it", inputs=[str(path)])


@pytest.mark.slow
def test_wap_build_over_http_with_arabic_preprocessing(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    for i, (name, _, _) in enumerate(ENTRIES):
        (site / name).write_bytes(jpeg_bytes((30 * i, 80, 120)))
    with serve(Behaviour(root=site)) as base:
        path = tmp_path / "WikipediaArabicPairs(WAP).csv"
        _write_published(path, base)
        request = BuildRequest(
            WapBuilder(inputs=[str(path)]),
            tmp_path / "out",
            plan=make_plan("ar", ["ar-normalize", "ar-min-tokens=3"]),
            images=ImageOptions(image_size=32, shard_size=10, threads=4),
        )
        manifest = run_build(request)
    samples = list(wds.WebDataset(str(tmp_path / "out" / "shards" / "00000.tar"), shardshuffle=False))
    assert [s["txt"].decode() for s in samples] == [
        "مسجد قباء في المدينة المنورة",
        "خريطة تظهر موقع المدينة عام 1900",
        "صورة لجسر Golden Gate في سان فرانسيسكو",
    ]
    text = manifest["counts"]["text"]
    assert counts_by_spec(text)["ar-min-tokens=3"] == {"in": 5, "kept": 3, "dropped": 2, "errors": 0}
    assert text["builder"]["skipped"] == {"mime image/svg+xml": 1}
    assert manifest["sources"]["wap"]["license"] == "cc-by-sa-4.0"
