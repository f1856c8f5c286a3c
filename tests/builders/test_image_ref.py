"""image_ref: one identity per photo across sources, on the real files' names and URLs."""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from pathlib import Path

import pytest

from capbuild.builders.image_ref import (
    coco_ref,
    commons_ref,
    file_ref,
    flickr_ref,
    image_ref_for_url,
    normalise_url,
    openimages_ref,
    ref_kind,
    url_ref,
)


@pytest.mark.parametrize(
    ("value", "ref"),
    [
        (61844, "coco:61844"),
        ("61844", "coco:61844"),
        ("000000061844", "coco:61844"),
        ("COCO_train2014_000000061844.jpg", "coco:61844"),
        ("COCO_val2014_000000169356.jpg", "coco:169356"),
        ("000000493652.jpg", "coco:493652"),
        ("train2014/COCO_train2014_000000061844.jpg", "coco:61844"),
        ("COCO_train2014_000000117071.jpg#367178", "coco:117071"),
        ("http://images.cocodataset.org/train2017/000000493652.jpg", "coco:493652"),
    ],
)
def test_coco_ids_file_names_and_urls_give_one_ref(value, ref):
    assert coco_ref(value) == ref


def test_coco_rejects_what_is_no_coco_image():
    with pytest.raises(ValueError, match="COCO"):
        coco_ref("a photo.png")


def test_flickr8k_and_flickr30k_names_of_the_same_photo_agree():
    # The example: Flickr8k 1258913059_07c613f7ff.jpg is Flickr30k 1258913059.jpg (Multi30k test_2016).
    assert flickr_ref("1258913059_07c613f7ff.jpg") == flickr_ref("1258913059.jpg") == "flickr:1258913059"
    assert flickr_ref("Flicker8k_Dataset/1258913059_07c613f7ff.jpg") == "flickr:1258913059"
    with pytest.raises(ValueError, match="Flickr"):
        flickr_ref("COCO_train2014_000000061844.jpeg.png")


def test_openimages_ids_are_lower_case_hex():
    assert openimages_ref("000411001FF7DD4F") == "openimages:000411001ff7dd4f"
    with pytest.raises(ValueError, match="Open Images"):
        openimages_ref("not-an-id")


@pytest.mark.parametrize(
    "url",
    [
        "https://upload.wikimedia.org/wikipedia/commons/0/04/MGS_logo.JPG",
        "http://upload.wikimedia.org/wikipedia/commons/0/04/MGS%20logo.JPG",
        "https://upload.wikimedia.org/wikipedia/commons/thumb/0/04/MGS_logo.JPG/220px-MGS_logo.JPG",
        "https://commons.wikimedia.org/wiki/File:MGS_logo.JPG",
        "MGS logo.JPG",
        "File:mGS_logo.JPG",
    ],
)
def test_commons_urls_thumbnails_pages_and_names_give_one_ref(url):
    assert commons_ref(url) == "commons:MGS_logo.JPG"


def test_commons_percent_decoding_keeps_non_ascii_names():
    url = "https://upload.wikimedia.org/wikipedia/commons/a/a9/Caf%C3%A9_de_Flore%2C_Paris.jpg"
    assert commons_ref(url) == "commons:Café_de_Flore,_Paris.jpg"
    assert url_ref(url) == "commons:Café_de_Flore,_Paris.jpg"


def test_url_normalisation_forgets_scheme_case_port_fragment_and_escaping():
    a = normalise_url("HTTP://Example.COM:80/a%20b/c.jpg?x=1#top")
    b = normalise_url("https://example.com/a b/c.jpg?x=1")
    assert a == b == "https://example.com/a%20b/c.jpg?x=1"
    assert normalise_url("https://example.com:8443/x.jpg") == "https://example.com:8443/x.jpg"
    with pytest.raises(ValueError, match="http"):
        normalise_url("ftp://example.com/x.jpg")


def test_url_ref_recognises_flickr_coco_and_commons_urls():
    assert url_ref("http://farm8.staticflickr.com/7298/9444351194_66d294013f_z.jpg") == "flickr:9444351194"
    assert url_ref("https://live.staticflickr.com/65535/3874226718_8b2a9fbc4e.jpg") == "flickr:3874226718"
    assert url_ref("http://images.cocodataset.org/val2014/COCO_val2014_000000169356.jpg") == "coco:169356"
    assert url_ref("https://example.com/img/1.jpg") == "url:https://example.com/img/1.jpg"


def test_file_ref_is_the_sha1_of_the_bytes_whatever_the_name(tmp_path: Path):
    a, b = tmp_path / "a.jpg", tmp_path / "b c.jpg"
    a.write_bytes(b"\xff\xd8same bytes")
    b.write_bytes(b"\xff\xd8same bytes")
    expected = "file:" + hashlib.sha1(b"\xff\xd8same bytes").hexdigest()
    assert file_ref(a) == file_ref(b) == expected
    assert image_ref_for_url(b.resolve().as_uri()) == expected


def test_ref_kind_validates_refs():
    assert ref_kind("coco:1") == "coco" and ref_kind("url:https://x/y") == "url"
    for bad in ("coco", "image:1", "coco:"):
        with pytest.raises(ValueError, match="image_ref"):
            ref_kind(bad)


# --- the real files -------------------------------------------------------------------------


def test_every_xtd10_name_is_a_coco_image(realdata: Path):
    names = (realdata / "xtd10" / "test_image_names.txt").read_text().split()
    refs = [coco_ref(n) for n in names]
    assert len(refs) == len(set(refs)) == 100
    assert refs[0] == "coco:61844"


def test_every_multi30k_name_is_a_flickr_photo(realdata: Path):
    for listing in ("task1/test_2016_flickr.txt", "task2/test_2016_images.txt"):
        names = (realdata / "multi30k" / listing).read_text().split()
        refs = [flickr_ref(n) for n in names]
        assert len(refs) == len(set(refs)) == 100
        assert all(r == f"flickr:{n.removesuffix('.jpg')}" for r, n in zip(refs, names, strict=True))


def test_every_flickr8k_token_name_is_a_flickr_photo(realdata: Path):
    lines = (realdata / "flickr8k" / "Flickr8k.token.txt").read_text().splitlines()
    names = {line.split("#", 1)[0].removesuffix(".1") for line in lines if "#" in line}
    refs = {flickr_ref(n) for n in names}
    assert len(refs) == len(names) == 52  # 51 images and the bogus `.jpg.1` id, once its suffix is cut
    assert "flickr:1191338263" in refs


def test_coco_files_name_and_url_agree_with_the_id(realdata: Path):
    for path in (
        realdata / "coco" / "coco_mini_captions_train2017.json",
        realdata / "translated" / "it_mscoco" / "captions_ita_devset_validated.cut49.json",
    ):
        data = json.loads(path.read_text(encoding="utf-8"))
        for image in data["images"]:
            expected = coco_ref(image["id"])
            assert coco_ref(image["file_name"]) == expected
            if image.get("coco_url"):
                assert url_ref(image["coco_url"]) == expected
            flickr = image.get("flickr_url") or image.get("url")
            assert ref_kind(url_ref(flickr)) == "flickr"


def test_wit_image_urls_are_commons_files(realdata: Path):
    csv.field_size_limit(sys.maxsize)
    with (realdata / "wit" / "tfds_wit_dummy_train-00000-of-00009.tsv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    refs = [url_ref(row["image_url"]) for row in rows]
    assert refs[0] == "commons:MGS_logo.JPG"
    assert all(ref_kind(r) == "commons" for r in refs)


def test_cc3m_urls_are_normalised_web_urls(realdata: Path):
    lines = (realdata / "cc3m" / "Validation_GCC-1.1.0-Validation.first100.tsv").read_text().splitlines()
    refs = [url_ref(line.split("\t")[1]) for line in lines]
    assert all(ref_kind(r) in ("url", "flickr", "commons") for r in refs)
    assert all(r == url_ref(r.removeprefix("url:")) for r in refs if r.startswith("url:"))  # idempotent
