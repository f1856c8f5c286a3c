"""End to end: an XTD10 build from its real files, a COCO train build sharing three of its images, and
decontamination in the text stage (--decontaminate) and on the finished build (capbuild decontaminate)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import webdataset as wds
from images import jpeg_bytes
from typer.testing import CliRunner

from capbuild.cli import app

pytestmark = pytest.mark.slow

XTD_IMAGES = 6
SHARED = 3  # the COCO build holds the first three XTD10 images


@pytest.fixture(scope="module")
def inputs(realdata: Path, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("evalsets-e2e")
    names = (realdata / "xtd10" / "test_image_names.txt").read_text().split("\n")[:XTD_IMAGES]
    captions = (realdata / "xtd10" / "test_1kcaptions_it.txt").read_text().split("\n")[:XTD_IMAGES]
    xtd = root / "XTD10"
    xtd.mkdir()
    (xtd / "test_image_names.txt").write_text("\n".join(names) + "\n")
    (xtd / "test_1kcaptions_it.txt").write_text("\n".join(captions) + "\n")
    images = root / "coco2014" / "train2014"
    images.mkdir(parents=True)
    for i, name in enumerate(names):
        (images / name).write_bytes(jpeg_bytes((40 * i, 100, 200)))
    own = [f"COCO_train2014_{i:012d}.jpg" for i in (1, 2, 3, 4)]
    for i, name in enumerate(own):
        (images / name).write_bytes(jpeg_bytes((200, 40 * i, 100)))
    files = names[:SHARED] + own
    coco = {
        "images": [{"id": int(n.split("_")[-1].split(".")[0]), "file_name": n} for n in files],
        "annotations": [
            {"id": i, "image_id": int(n.split("_")[-1].split(".")[0]), "caption": f"a training photo number {i}"}
            for i, n in enumerate(files)
        ],
    }
    (root / "captions_train2014.json").write_text(json.dumps(coco))
    return {"root": root, "xtd": xtd, "images": root / "coco2014", "coco": root / "captions_train2014.json"}


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def _shard_refs(out: Path) -> list[str]:
    tars = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    return sorted(json.loads(s["json"])["image_ref"] for s in wds.WebDataset(tars, shardshuffle=False))


IMAGE_ARGS = ("--image-size", "32", "--shard-size", "8", "--threads", "2")


@pytest.fixture(scope="module")
def xtd_build(inputs) -> Path:
    out = inputs["root"] / "xtd10-it"
    _run("xtd10", inputs["xtd"], "--lang", "it", "--images", inputs["images"], "--out", out, *IMAGE_ARGS)
    return out


def test_xtd10_build_is_a_test_split_with_coco_refs(xtd_build: Path):
    table = pq.read_table(xtd_build / "captions").to_pylist()
    assert len(table) == XTD_IMAGES and {r["split"] for r in table} == {"test"} and {r["lang"] for r in table} == {"it"}
    assert table[0]["image_ref"] == "coco:61844"
    assert len(_shard_refs(xtd_build)) == XTD_IMAGES
    card = (xtd_build / "README.md").read_text()
    assert "Adobe" in card or "aggarwal2020towards" in card


def test_coco_train_build_decontaminated_in_the_text_stage(inputs, xtd_build: Path):
    out = inputs["root"] / "coco-dec"
    _run("coco", inputs["coco"], "--images", inputs["images"], "--decontaminate", xtd_build, "--out", out, *IMAGE_ARGS)
    shared = {f"coco:{int(n)}" for n in ("61844", "61849", "61850")}
    kept = pq.read_table(out / "captions")["image_ref"].to_pylist()
    assert len(kept) == 4 and not shared & set(kept)
    rejected = pq.read_table(out / "rejected").to_pylist()
    assert sorted(r["filter_value"] for r in rejected if r["filter"] == "decontaminate") == sorted(
        f"xtd10 {ref}" for ref in shared
    )
    assert _shard_refs(out) == sorted(kept)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(r["label"], r["rows"]) for r in manifest["decontamination"]] == [("xtd10 (it)", SHARED)]
    assert "decontaminated against xtd10 (it): 3 rows" in (out / "README.md").read_text()
    info = _run("info", out)
    assert "Decontamination" in info and "xtd10 (it)" in info and "text stage" in info


def test_finished_coco_build_decontaminated_afterwards(inputs, xtd_build: Path):
    out = inputs["root"] / "coco"
    _run("coco", inputs["coco"], "--images", inputs["images"], "--out", out, *IMAGE_ARGS)
    assert len(_shard_refs(out)) == 7
    said = _run("decontaminate", out, "--against", xtd_build)
    assert "decontaminated against xtd10 (it): 3 rows (3 shard samples)" in said
    assert len(_shard_refs(out)) == 4 and not any(r in _shard_refs(out) for r in ("coco:61844", "coco:61849"))
    assert "decontaminated against xtd10 (it): 3 rows, 3 shard samples" in (out / "README.md").read_text()
