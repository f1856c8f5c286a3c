"""The evaluation-set parsers (XTD10, Multi30k, Crossmodal-3600) on the real files and on files in
their published layouts."""

from __future__ import annotations

import gzip
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from capbuild.builders.evalset import EvalRecord, image_url, parse_languages, read_lines
from capbuild.builders.multi30k import check_images, parse_multi30k, parse_splits
from capbuild.builders.xm3600 import parse_xm3600
from capbuild.builders.xtd10 import parse_xtd10


def _xtd10(inputs: list[Path], langs: str) -> tuple[list[EvalRecord], Counter, Counter]:
    skipped, repaired = Counter(), Counter()
    return list(parse_xtd10(inputs, langs, skipped, repaired)), skipped, repaired


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")[:-1]


# --- XTD10 --------------------------------------------------------------------------------------


def test_xtd10_real_files_one_row_per_image_aligned_by_line(realdata: Path):
    folder = realdata / "xtd10"
    records, skipped, _ = _xtd10([folder], "it")
    names = _lines(folder / "test_image_names.txt")
    captions = _lines(folder / "test_1kcaptions_it.txt")
    assert len(records) == 100 and not skipped
    for record, name, caption in zip(records, names, captions, strict=True):
        assert record.captions == [caption.strip()]
        assert record.meta["file_name"] == name
        assert record.split == "test" and record.lang == "it"
    first = records[0]
    assert first.image_ref == "coco:61844"
    assert first.url == "http://images.cocodataset.org/train2014/COCO_train2014_000000061844.jpg"
    assert first.captions[0].startswith("partita di baseball della major league con giocatore dei pittsburgh")


def test_xtd10_folder_given_by_a_relative_path_through_dot_dot(realdata: Path, tmp_path: Path, monkeypatch):
    """`capbuild xtd10 ../shared/realdata/xtd10` as typed from the project: '..' is not a hidden folder."""
    (tmp_path / "project").mkdir()
    shutil.copytree(realdata / "xtd10", tmp_path / "xtd10")
    monkeypatch.chdir(tmp_path / "project")
    records, skipped, _ = _xtd10([Path("../xtd10")], "it")
    assert len(records) == 100 and not skipped


def test_xtd10_several_languages_give_one_row_per_image_and_language(realdata: Path):
    records, _, _ = _xtd10([realdata / "xtd10"], "it,es,en")
    assert len(records) == 300
    by_ref: dict[str, set[str]] = {}
    for record in records:
        by_ref.setdefault(record.image_ref, set()).add(record.lang)
    assert len(by_ref) == 100 and all(langs == {"it", "es", "en"} for langs in by_ref.values())
    assert len({r.source_id for r in records}) == 300
    all_langs, _, _ = _xtd10([realdata / "xtd10"], "all")
    assert sorted({r.lang for r in all_langs}) == ["en", "es", "it"]


def test_xtd10_repository_layout_mic_and_stair_folders(realdata: Path, tmp_path: Path):
    """The repository keeps de/fr in MIC/ and Japanese (`jp`) in STAIR/, each beside its own name list."""
    repo = tmp_path / "Cross-lingual-Test-Dataset-XTD10"
    for folder, files in {
        "XTD10": {"test_image_names.txt": "test_image_names.txt", "test_1kcaptions_it.txt": "test_1kcaptions_it.txt"},
        "MIC": {"test_image_names.txt": "test_image_names.txt", "test_1kcaptions_es.txt": "test_1kcaptions_de.txt"},
        "STAIR": {"test_image_names.txt": "test_image_names.txt", "test_1kcaptions_en.txt": "test_1kcaptions_jp.txt"},
    }.items():
        (repo / folder).mkdir(parents=True)
        for source, target in files.items():
            shutil.copy(realdata / "xtd10" / source, repo / folder / target)
    records, _, _ = _xtd10([repo], "de,ja,it")
    assert [r.lang for r in records[::100]] == ["de", "ja", "it"]
    assert records[100].captions == [_lines(realdata / "xtd10" / "test_1kcaptions_en.txt")[0]]
    jp, _, _ = _xtd10([repo], "jp")
    assert {r.lang for r in jp} == {"ja"}


def test_xtd10_images_from_folders_then_public_urls(realdata: Path, tmp_path: Path):
    (tmp_path / "train2014").mkdir()
    photo = tmp_path / "train2014" / "COCO_train2014_000000061844.jpg"
    photo.write_bytes(b"\xff\xd8")
    records, _, _ = _xtd10([realdata / "xtd10"], "it")
    assert image_url(records[0], [tmp_path]) == photo.resolve().as_uri()
    assert image_url(records[1], [tmp_path]) == records[1].url  # not in the folder: COCO's public URL
    assert image_url(records[1], []) == records[1].url


def test_xtd10_errors_name_what_is_missing_or_misaligned(realdata: Path, tmp_path: Path):
    with pytest.raises(ValueError, match=r"no captions for ko.*MIC"):
        _xtd10([realdata / "xtd10"], "ko")
    shutil.copy(realdata / "xtd10" / "test_image_names.txt", tmp_path / "test_image_names.txt")
    (tmp_path / "test_1kcaptions_it.txt").write_text("una riga\n")
    with pytest.raises(ValueError, match=r"1 lines but .* has 100"):
        _xtd10([tmp_path], "it")
    with pytest.raises(ValueError, match=r"no test_image_names\.txt"):
        _xtd10([tmp_path / "test_1kcaptions_it.txt"], "it")


def test_xtd10_empty_captions_are_counted_and_a_separator_inside_a_line_does_not_shift_it(tmp_path: Path):
    (tmp_path / "test_image_names.txt").write_text(
        "COCO_val2014_000000000042.jpg\r\nCOCO_train2014_000000000007.jpg\r\nCOCO_val2014_000000000009.jpg\r\n"
    )
    (tmp_path / "test_1kcaptions_it.txt").write_bytes("\ufeffuna\u2028riga\r\n  \r\ntre\r\n".encode())
    records, skipped, _ = _xtd10([tmp_path], "it")
    assert [(r.image_ref, r.captions) for r in records] == [("coco:42", ["una\u2028riga"]), ("coco:9", ["tre"])]
    assert skipped == Counter({"empty_caption": 1})
    assert records[0].url == "http://images.cocodataset.org/val2014/COCO_val2014_000000000042.jpg"


# --- Multi30k -----------------------------------------------------------------------------------


def _multi30k(inputs, task, splits, langs, has_images=True):
    skipped, repaired = Counter(), Counter()
    return list(parse_multi30k(inputs, task, splits, langs, has_images, skipped, repaired)), skipped


def test_multi30k_task1_real_files_one_caption_per_image(realdata: Path):
    records, skipped = _multi30k([realdata / "multi30k"], 1, "test_2016", "de,en")
    assert len(records) == 200 and not skipped
    names = _lines(realdata / "multi30k" / "task1" / "test_2016_flickr.txt")
    with gzip.open(realdata / "multi30k" / "task1" / "test_2016_flickr.de.gz", "rt", encoding="utf-8") as f:
        german = f.read().split("\n")
    first = records[0]
    assert first.image_ref == f"flickr:{names[0].removesuffix('.jpg')}"
    assert first.captions == [german[0].strip()] and first.lang == "de" and first.split == "test"
    assert first.url is None and first.paths == (names[0], f"flickr30k-images/{names[0]}")
    assert [r.lang for r in records[::100]] == ["de", "en"]


def test_multi30k_task2_keeps_the_five_independent_captions(realdata: Path):
    records, _ = _multi30k([realdata / "multi30k" / "task2"], 2, "test_2016", "en")
    assert len(records) == 100
    expected = []
    for i in range(1, 6):
        with gzip.open(realdata / "multi30k" / "task2" / f"test_2016.{i}.en.gz", "rt", encoding="utf-8") as f:
            expected.append(f.read().split("\n")[0].strip())
    assert records[0].captions == expected
    assert records[0].image_ref == "flickr:1007129816"


def test_multi30k_flickr_splits_need_images_and_say_so_first(realdata: Path):
    with pytest.raises(ValueError, match="no public URL: pass --images"):
        _multi30k([realdata / "multi30k"], 1, "test_2016_flickr", "en", has_images=False)
    check_images(1, ["test_2017_mscoco"], has_images=False)  # COCO images have URLs


def test_multi30k_mscoco_split_names_carry_an_annotation_id(tmp_path: Path):
    task1 = tmp_path / "data" / "task1"
    (task1 / "image_splits").mkdir(parents=True)
    (task1 / "raw").mkdir()
    (task1 / "image_splits" / "test_2017_mscoco.txt").write_text(
        "COCO_train2014_000000117071.jpg#367178\nCOCO_val2014_000000000042.jpg#12\n"
    )
    with gzip.open(task1 / "raw" / "test_2017_mscoco.fr.gz", "wt", encoding="utf-8") as f:
        f.write("Un homme sur un vélo.\nUn chat.\n")
    records, _ = _multi30k([tmp_path / "data"], 1, "test_2017_mscoco", "fr", has_images=False)
    assert [r.image_ref for r in records] == ["coco:117071", "coco:42"]
    assert records[0].meta["annotation_id"] == "367178"
    assert records[0].url == "http://images.cocodataset.org/train2014/COCO_train2014_000000117071.jpg"
    assert records[0].paths[0] == "COCO_train2014_000000117071.jpg"


def test_multi30k_options_are_checked(realdata: Path):
    assert parse_splits(1, "test_2016") == ["test_2016_flickr"]
    assert parse_splits(2, "test_2016_flickr,val") == ["test_2016", "val"]
    with pytest.raises(ValueError, match="task 2 splits are train, val, test_2016"):
        parse_splits(2, "test_2017_flickr")
    with pytest.raises(ValueError, match="task 2 has en, de, not fr"):
        _multi30k([realdata / "multi30k"], 2, "test_2016", "fr")
    with pytest.raises(ValueError, match=r"no val\.txt"):
        _multi30k([realdata / "multi30k"], 1, "val", "cs")


# --- Crossmodal-3600 ---------------------------------------------------------------------------


def write_xm3600(path: Path, images: dict[str, dict[str, list[str]]], extra_lines: tuple[str, ...] = ()) -> Path:
    """captions.jsonl in the published layout: image/key and, per language, caption + caption/tokenized."""
    lines = []
    for key, by_lang in images.items():
        entry: dict = {"image/key": key}
        for lang, captions in by_lang.items():
            entry[lang] = {"caption": captions, "caption/tokenized": [c.lower() for c in captions]}
        lines.append(json.dumps(entry, ensure_ascii=False))
    path.write_text("\n".join([*lines, *extra_lines]) + "\n", encoding="utf-8")
    return path


XM_IMAGES = {
    "000411001ff7dd4f": {"ar": ["قطة على كرسي", "قطة بيضاء"], "it": ["un gatto su una sedia"], "iw": ["חתול"]},
    "00e93ffa4c5d81e8": {"ar": ["رجل يركب دراجة"], "it": ["un uomo in bici", "ciclista in strada", "bici"]},
}


def test_xm3600_keeps_every_caption_of_each_language(tmp_path: Path):
    path = write_xm3600(tmp_path / "captions.jsonl", XM_IMAGES)
    skipped, repaired = Counter(), Counter()
    records = list(parse_xm3600(path, "it,ar", skipped, repaired))
    assert [(r.lang, r.image_ref, r.captions) for r in records] == [
        ("it", "openimages:000411001ff7dd4f", ["un gatto su una sedia"]),
        ("it", "openimages:00e93ffa4c5d81e8", ["un uomo in bici", "ciclista in strada", "bici"]),
        ("ar", "openimages:000411001ff7dd4f", ["قطة على كرسي", "قطة بيضاء"]),
        ("ar", "openimages:00e93ffa4c5d81e8", ["رجل يركب دراجة"]),
    ]
    assert records[0].paths == ("000411001ff7dd4f.jpg", "images/000411001ff7dd4f.jpg")
    assert all(r.split == "test" for r in records)


def test_xm3600_all_languages_hebrew_code_and_counted_bad_lines(tmp_path: Path):
    path = write_xm3600(
        tmp_path / "captions.jsonl", XM_IMAGES, extra_lines=("{not json", json.dumps({"ar": {"caption": ["x"]}}))
    )
    skipped, repaired = Counter(), Counter()
    records = list(parse_xm3600(path, "all", skipped, repaired))
    assert sorted({r.lang for r in records}) == ["ar", "he", "it"]
    assert len(records) == 5
    assert skipped == Counter({"malformed_line": 1, "line_without_image_key": 1, "image_without_he": 1})
    he = list(parse_xm3600(path, "iw", Counter(), Counter()))
    assert [(r.lang, r.captions) for r in he] == [("he", ["חתול"])]
    with pytest.raises(ValueError, match="no captions in fr"):
        list(parse_xm3600(path, "fr", Counter(), Counter()))


def test_languages_and_lines_helpers(tmp_path: Path):
    assert parse_languages("it, es,it") == ["it", "es"]
    assert parse_languages("all") is None
    assert parse_languages(["jp"], {"jp": "ja"}) == ["ja"]
    with pytest.raises(ValueError, match="--lang"):
        parse_languages(" , ")
    path = tmp_path / "x.txt.gz"
    path.write_bytes(gzip.compress(b"a\r\nb\xff\n"))
    repaired = Counter()
    assert read_lines(path, repaired) == ["a", "b\ufffd"] and repaired["invalid_utf8_replaced"] == 1


# --- the commands ---------------------------------------------------------------------------------


def test_multi30k_command_without_images_fails_before_writing(realdata: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from capbuild.cli import app

    out = tmp_path / "m30k"
    result = CliRunner().invoke(
        app, ["multi30k", str(realdata / "multi30k"), "--split", "test_2016", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "no public URL: pass --images" in " ".join(result.output.split())
    assert not out.exists()


@pytest.mark.parametrize("name", ["xtd10", "multi30k", "xm3600"])
def test_evaluation_set_commands_have_help_with_an_example(name: str):
    from typer.testing import CliRunner

    from capbuild.cli import app

    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and f"capbuild {name} " in result.output and "--decontaminate" in result.output
