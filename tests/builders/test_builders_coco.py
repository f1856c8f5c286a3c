import json
from pathlib import Path

import pytest

from capbuild.builders.coco import CocoBuilder
from capbuild.errors import CapbuildError


def _rows(**kwargs):
    builder = CocoBuilder(**kwargs)
    return list(builder.rows()), builder


def test_real_coco_2017_file_keeps_every_caption_of_every_image(realdata):
    path = realdata / "coco" / "coco_mini_captions_train2017.json"
    data = json.loads(path.read_text())
    rows, builder = _rows(inputs=[path])
    assert len(rows) == len(data["images"]) == 80
    assert sum(len(r["captions"]) for r in rows) == len(data["annotations"]) == 400
    by_image = {}
    for annotation in data["annotations"]:
        by_image.setdefault(str(annotation["image_id"]), []).append(annotation["caption"].strip())
    for row in rows:
        assert row["captions"] == by_image[row["source_id"]]
        assert row["caption"] == row["captions"][0]
        assert row["image_url"].startswith("http://images.cocodataset.org/train2017/")
        assert row["split"] == "train" and row["lang"] == "en" and row["source"] == "coco"
    assert len({r["key"] for r in rows}) == 80
    assert builder.report() == {"skipped": {}, "repaired": {}}


def test_real_photos_resolve_to_files_in_either_image_folder(realdata):
    coco = realdata / "images" / "coco"
    rows, _builder = _rows(
        inputs=[coco / "captions_train2017.subset.json", coco / "captions_val2017.subset.json"],
        image_dirs=[coco],
    )
    assert len(rows) == 25
    assert {r["split"] for r in rows} == {"train", "val"}
    for row in rows:
        path = Path(row["image_url"].removeprefix("file://"))
        assert path.is_file(), row["image_url"]
        assert path.parent.name == ("train2017" if row["split"] == "train" else "val2017")


def test_real_mscoco_it_mixed_ids_crlf_and_url_field(realdata):
    path = realdata / "translated" / "it_mscoco" / "captions_ita_devset_validated.cut49.json"
    assert b"\r\n" in path.read_bytes()
    rows, _builder = _rows(inputs=[path], lang="it")
    assert len(rows) == 49
    assert sum(len(r["captions"]) for r in rows) == 246
    assert all(r["lang"] == "it" and r["image_url"].startswith("http://farm") for r in rows)
    assert all(r["source_id"].isdigit() for r in rows)
    row = next(r for r in rows if r["source_id"] == "198415")  # int ids in the file's tail
    assert "Un gruppo di persone sono sedute intorno a tavoli e applaudono." in row["captions"]
    assert row["split"] == "val"  # "devset" in the file name


def _write(path: Path, data, newline="\n") -> Path:
    path.write_bytes(json.dumps(data, ensure_ascii=False, indent=1).replace("\n", newline).encode())
    return path


def test_self_made_quirks(tmp_path):
    data = {
        "images": [
            {"id": "7", "file_name": "COCO_val2014_000000000007.jpg", "flickr_url": "http://f/7.jpg"},
            {"id": 8, "file_name": "COCO_val2014_000000000008.jpg"},
            {"id": 9, "file_name": "COCO_val2014_000000000009.jpg", "coco_url": "http://c/9.jpg"},
        ],
        "annotations": [
            {"image_id": 7, "id": 1, "caption": " A dog.\n"},
            {"image_id": "7", "id": 2, "caption": "Un cane."},
            {"image_id": 8, "id": 3, "caption": "no url for me"},
            {"image_id": 9, "id": 4, "caption": "   "},
            {"image_id": 99, "id": 5, "caption": "orphan"},
        ],
    }
    path = _write(tmp_path / "captions_val2014.json", data, newline="\r\n")
    rows, builder = _rows(inputs=[path])
    assert [(r["source_id"], r["captions"], r["image_url"]) for r in rows] == [
        ("7", ["A dog.", "Un cane."], "http://f/7.jpg")
    ]
    assert builder.skipped == {
        "no_image_url": 1,
        "empty_caption": 1,
        "image_without_captions": 1,
        "caption_without_image": 1,
    }


def test_images_dir_with_2014_subfolder_and_missing_file(tmp_path):
    data = {
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg"}, {"id": 2, "file_name": "x.jpg"}],
        "annotations": [{"image_id": 1, "id": 1, "caption": "a"}, {"image_id": 2, "id": 2, "caption": "b"}],
    }
    path = _write(tmp_path / "captions_train2014.json", data)
    (tmp_path / "imgs" / "train2014").mkdir(parents=True)
    (tmp_path / "imgs" / "train2014" / "COCO_train2014_000000000001.jpg").write_bytes(b"jpg")
    rows, _ = _rows(inputs=[path], image_dirs=[tmp_path / "imgs"])
    assert rows[0]["image_url"] == (tmp_path / "imgs/train2014/COCO_train2014_000000000001.jpg").as_uri()
    # A missing file still becomes a row: the image stage counts it as missing_file.
    assert rows[1]["image_url"] == (tmp_path / "imgs/x.jpg").as_uri()


KARPATHY = {
    "images": [
        {
            "filepath": "val2014",
            "filename": "COCO_val2014_000000000042.jpg",
            "split": "test",
            "cocoid": 42,
            "sentences": [{"raw": "A man rides a horse."}, {"raw": "Someone on a horse."}],
        },
        {
            "filepath": "train2014",
            "filename": "COCO_train2014_000000000043.jpg",
            "split": "restval",
            "cocoid": 43,
            "sentences": [{"raw": "Two birds."}],
        },
    ],
    "dataset": "coco",
}


def test_karpathy_file_alone_gives_rows_and_splits(tmp_path):
    path = _write(tmp_path / "dataset_coco.json", KARPATHY)
    (tmp_path / "val2014").mkdir()
    (tmp_path / "val2014" / "COCO_val2014_000000000042.jpg").write_bytes(b"jpg")
    rows, _ = _rows(inputs=[path], image_dirs=[tmp_path])
    assert [(r["source_id"], r["split"], r["captions"]) for r in rows] == [
        ("42", "test", ["A man rides a horse.", "Someone on a horse."]),
        ("43", "train", ["Two birds."]),
    ]
    assert rows[0]["image_url"].endswith("/val2014/COCO_val2014_000000000042.jpg")


def test_karpathy_file_sets_the_split_of_translated_captions(tmp_path):
    karpathy = _write(tmp_path / "dataset_coco.json", KARPATHY)
    italian = _write(
        tmp_path / "captions_it.json",
        {
            "images": [{"id": "42", "file_name": "COCO_val2014_000000000042.jpg", "url": "http://x/42.jpg"}],
            "annotations": [{"image_id": "42", "id": "1", "caption": "Un uomo a cavallo."}],
        },
    )
    rows, _ = _rows(inputs=[italian, karpathy], lang="it")
    assert [(r["source_id"], r["split"], r["captions"]) for r in rows] == [("42", "test", ["Un uomo a cavallo."])]


def test_not_a_coco_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"foo": 1}')
    with pytest.raises(CapbuildError, match="not a COCO captions file"):
        _rows(inputs=[bad])
    bad.write_bytes(b"\xff\xfe garbage")
    with pytest.raises(CapbuildError, match="not valid UTF-8 JSON"):
        _rows(inputs=[bad])
