"""Decontamination of a finished build against evaluation builds or image_ref files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from eval_builds import row, write_build

from capbuild.decontaminate import decontaminate_build, describe
from capbuild.filters.decontaminate import load_eval_set, overlap_mask
from capbuild.images.shards import read_samples

TRAIN_IDS = list(range(1, 41))  # coco:1..40, three captions each
XTD_IDS = [3, 7, 11, 50, 51]  # three shared with the train build, two not


def train_rows() -> list[dict]:
    return [
        row("coco", str(i), f"coco:{i}", [f"caption {i} {j}" for j in range(3)], "it", "train" if i <= 32 else "val")
        for i in TRAIN_IDS
    ]


def xtd_rows(langs=("it", "es")) -> list[dict]:
    return [row("xtd10", f"{lang}/{i}", f"coco:{i}", [f"{lang} {i}"], lang, "test") for lang in langs for i in XTD_IDS]


@pytest.fixture
def builds(tmp_path: Path) -> tuple[Path, Path]:
    return write_build(tmp_path / "coco-it", "coco", train_rows()), write_build(tmp_path / "xtd10", "xtd10", xtd_rows())


def _table(folder: Path):
    return pq.read_table(folder)


def _shard_keys(out: Path) -> list[str]:
    return [key for tar in sorted((out / "shards").glob("*.tar")) for key, _ in read_samples(tar)]


def test_eval_sets_load_from_builds_and_ref_files(builds, tmp_path: Path):
    _, xtd = builds
    eval_set = load_eval_set(xtd)
    assert (eval_set.name, eval_set.langs, eval_set.label) == ("xtd10", ("es", "it"), "xtd10 (es, it)")
    assert eval_set.refs == {f"coco:{i}" for i in XTD_IDS}
    refs = tmp_path / "refs.txt"
    refs.write_text("# XTD10 images\ncoco:3\n\ncoco:50\n")
    from_file = load_eval_set(refs)
    assert (from_file.name, from_file.refs) == ("refs", {"coco:3", "coco:50"})
    refs.write_text("coco:3\nnot a ref\n")
    with pytest.raises(ValueError, match=r"refs\.txt:2: not an image_ref"):
        load_eval_set(refs)
    with pytest.raises(FileNotFoundError, match="no such build folder"):
        load_eval_set(tmp_path / "missing")


def test_a_build_without_a_test_split_counts_every_row(tmp_path: Path):
    out = write_build(tmp_path / "b", "coco", train_rows())
    assert len(load_eval_set(out).refs) == 40


def test_finished_build_loses_exactly_the_shared_images(builds):
    train, xtd = builds
    before_keys = set(_shard_keys(train))
    records = decontaminate_build(train, [xtd], show_progress=False)
    shared = {f"coco:{i}" for i in XTD_IDS if i in TRAIN_IDS}
    captions = _table(train / "captions")
    assert len(captions) == 37 and not shared & set(captions["image_ref"].to_pylist())
    rejected = _table(train / "rejected").to_pylist()
    assert sorted((r["filter"], r["filter_value"]) for r in rejected) == [
        ("decontaminate", f"xtd10 {ref}") for ref in sorted(shared)
    ]
    assert records == [
        {
            "set": "xtd10",
            "label": "xtd10 (es, it)",
            "langs": ["es", "it"],
            "against": str(xtd),
            "fingerprint": load_eval_set(xtd).fingerprint,
            "images": 5,
            "stage": "finished build",
            "rows": 3,
            "samples": 3,
        }
    ]
    assert describe(records[0]) == "decontaminated against xtd10 (es, it): 3 rows"
    keys = set(_shard_keys(train))
    dropped = {r["key"] for r in rejected}
    assert keys == before_keys - dropped and len(keys) == 37
    sizes = json.loads((train / "shards" / "sizes.json").read_text())
    assert sum(sizes.values()) == 37
    for tar in (train / "shards").glob("*.tar"):
        status = pq.read_table(tar.with_suffix(".parquet"))
        assert set(status["key"].to_pylist()) == {k for k, _ in read_samples(tar)}
    manifest = json.loads((train / "manifest.json").read_text())
    assert manifest["decontamination"] == records
    assert manifest["counts"]["text"]["captions"] == 37 and manifest["counts"]["text"]["rejected"] == 3
    assert manifest["counts"]["images"]["success"] == 37
    assert (train / "README.md").is_file()


def test_running_it_again_changes_nothing(builds):
    train, xtd = builds
    decontaminate_build(train, [xtd], show_progress=False)
    snapshot = {p: p.read_bytes() for p in sorted(train.rglob("*")) if p.is_file() and p.name != "README.md"}
    records = decontaminate_build(train, [xtd], show_progress=False)
    assert records[0]["rows"] == 3
    after = {p: p.read_bytes() for p in sorted(train.rglob("*")) if p.is_file() and p.name != "README.md"}
    assert after == snapshot
    assert len(json.loads((train / "manifest.json").read_text())["decontamination"]) == 1


def test_several_sets_each_row_goes_to_the_first_set_holding_it(builds, tmp_path: Path):
    train, xtd = builds
    refs = tmp_path / "flickr-and-more.txt"
    refs.write_text("coco:3\ncoco:20\ncoco:21\nflickr:1\n")
    records = decontaminate_build(train, [xtd, refs], show_progress=False)
    assert [(r["label"], r["rows"]) for r in records] == [("xtd10 (es, it)", 3), ("flickr-and-more", 2)]
    values = sorted(r["filter_value"] for r in _table(train / "rejected").to_pylist())
    assert values == [
        "flickr-and-more coco:20",
        "flickr-and-more coco:21",
        "xtd10 coco:11",
        "xtd10 coco:3",
        "xtd10 coco:7",
    ]


def test_a_build_without_image_refs_is_refused(builds, tmp_path: Path):
    train, xtd = builds
    table = _table(train / "captions").drop_columns(["image_ref"])
    shutil.rmtree(train / "captions")
    (train / "captions").mkdir()
    pq.write_table(table, train / "captions" / "part-00000.parquet")
    with pytest.raises(ValueError, match="no image_ref column"):
        decontaminate_build(train, [xtd], show_progress=False)


def test_overlap_mask_treats_missing_refs_as_clean(builds):
    _, xtd = builds
    import pyarrow as pa

    table = pa.table({"image_ref": ["coco:3", None, "coco:4"]})
    assert overlap_mask(table, [load_eval_set(xtd)]).to_pylist() == [True, False, False]


KILL_SCRIPT = """
import os, sys
from pathlib import Path
import capbuild.images.shards as shards
from capbuild.decontaminate import decontaminate_build
real = shards.write_samples
def write_then_die(samples, dst):
    real(samples, dst)
    os._exit(9)
import capbuild.decontaminate as d
d.write_samples = write_then_die
decontaminate_build(Path(sys.argv[1]), [sys.argv[2]], show_progress=False)
"""


def test_killed_midway_then_rerun_gives_the_same_build(builds, tmp_path: Path):
    train, xtd = builds
    reference = write_build(tmp_path / "reference", "coco", train_rows())
    decontaminate_build(reference, [xtd], show_progress=False)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), *sys.path])}
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(train), str(xtd)], env=env, check=False)
    assert killed.returncode == 9
    assert json.loads((train / "manifest.json").read_text())["decontamination"][0]["pending"]
    decontaminate_build(train, [xtd], show_progress=False)
    manifests = [json.loads((b / "manifest.json").read_text()) for b in (train, reference)]
    assert manifests[0]["decontamination"] == manifests[1]["decontamination"]
    assert manifests[0]["counts"] == manifests[1]["counts"]
    for folder in ("captions", "rejected", "shards"):
        names = sorted(p.relative_to(train) for p in (train / folder).rglob("*"))
        assert names == sorted(p.relative_to(reference) for p in (reference / folder).rglob("*"))
        for name in names:
            assert (train / name).read_bytes() == (reference / name).read_bytes(), name


def test_judge_gives_the_step_verdict_and_value(builds, tmp_path: Path):
    from capbuild.filters.decontaminate import judge

    _, xtd = builds
    refs = tmp_path / "more.txt"
    refs.write_text("coco:99\ncoco:3\n")
    keep, values = judge(["coco:3", "coco:4", None, "coco:99"], [load_eval_set(xtd), load_eval_set(refs)])
    assert keep == [False, True, True, False]
    assert values == ["xtd10 coco:3", "", "", "more coco:99"]
