"""End to end: real COCO photos -> caption table -> img2dataset -> WebDataset shards, read back."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import webdataset as wds

from capbuild.build import BuildConflictError, BuildRequest, run_build
from capbuild.builders.coco import CocoBuilder
from capbuild.filters.clean_text import clean_caption
from capbuild.images.stage import ImageOptions
from capbuild.stages.text.plan import make_plan
from capbuild.stages.text.records import plan_specs

pytestmark = pytest.mark.slow


def _coco_request(realdata: Path, out: Path, filters: tuple[str, ...] = ("dedup",), **kwargs) -> BuildRequest:
    coco = realdata / "images" / "coco"
    builder = CocoBuilder(
        inputs=[coco / "captions_train2017.subset.json", coco / "captions_val2017.subset.json"],
        image_dirs=[coco / "train2017", coco / "val2017"],
    )
    defaults = {"plan": make_plan("en", filters), "images": ImageOptions(image_size=64, shard_size=8, threads=4)}
    return BuildRequest(builder=builder, out=out, **{**defaults, **kwargs})


@pytest.fixture(scope="module")
def coco_build(realdata, tmp_path_factory):
    out = tmp_path_factory.mktemp("coco-build")
    manifest = run_build(_coco_request(realdata, out))
    return out, manifest


def _real_captions(realdata: Path) -> dict[str, list[str]]:
    captions: dict[str, list[str]] = {}
    for split in ("train", "val"):
        data = json.loads((realdata / "images" / "coco" / f"captions_{split}2017.subset.json").read_text())
        for annotation in data["annotations"]:
            captions.setdefault(str(annotation["image_id"]), []).append(annotation["caption"].strip())
    return captions


def test_shards_hold_every_photo_with_one_of_its_real_captions(coco_build, realdata):
    out, _manifest = coco_build
    real = _real_captions(realdata)
    samples = list(wds.WebDataset(sorted(str(p) for p in (out / "shards").glob("*.tar")), shardshuffle=False))
    assert len(samples) == 25
    table = pq.read_table(out / "captions").to_pylist()
    keys = {row["key"]: row for row in table}
    for sample in samples:
        assert set(sample) >= {"__key__", "jpg", "txt", "json"}
        assert "." not in sample["__key__"]
        meta = json.loads(sample["json"])
        assert meta["key"] == sample["__key__"] and sample["__key__"] in keys
        caption = sample["txt"].decode()
        assert caption in [clean_caption(c) for c in real[meta["source_id"]]]
        assert caption == keys[sample["__key__"]]["caption"]
        assert meta["captions"] == [clean_caption(c) for c in real[meta["source_id"]]]
        assert (meta["width"], meta["height"]) == (64, 64)
        for field in ("source", "source_id", "caption_orig", "lang_orig", "url", "original_width"):
            assert field in meta
        assert sample["jpg"][:2] == b"\xff\xd8"


def test_counts_match_the_manifest_and_sizes_json(coco_build):
    out, manifest = coco_build
    images = manifest["counts"]["images"]
    assert manifest["counts"]["text"]["source_rows"] == 25
    assert manifest["counts"]["text"]["captions"] == 25
    assert images["success"] == 25 and images["failed"] == {}
    sizes = json.loads((out / "shards" / "sizes.json").read_text())
    assert sum(sizes.values()) == 25
    assert sorted(sizes) == sorted(p.name for p in (out / "shards").glob("*.tar"))
    assert manifest["stages"]["images"]["done"] and not (out / ".work").exists()


def test_each_shard_holds_one_split(coco_build):
    out, manifest = coco_build
    splits = manifest["counts"]["images"]["splits"]
    assert splits == {"train": ["00000.tar", "00001.tar"], "val": ["00002.tar", "00003.tar"]}
    for split, tars in splits.items():
        for tar in tars:
            assert {
                json.loads(s["json"])["split"] for s in wds.WebDataset(str(out / "shards" / tar), shardshuffle=False)
            } == {split}


def test_hugging_face_webdataset_loader_reads_every_split(coco_build):
    from datasets import load_dataset

    out, manifest = coco_build
    data_files = {
        split: [str(out / "shards" / t) for t in tars] for split, tars in manifest["counts"]["images"]["splits"].items()
    }
    dataset = load_dataset("webdataset", data_files=data_files)
    assert {split: len(ds) for split, ds in dataset.items()} == {"train": 10, "val": 15}
    row = dataset["val"][0]
    assert row["jpg"].size == (64, 64)
    assert isinstance(row["txt"], str) and row["json"]["key"] == row["__key__"]


def test_rebuild_gives_identical_table_and_shards(coco_build, realdata, tmp_path):
    out, _ = coco_build
    run_build(_coco_request(realdata, tmp_path))
    assert pq.read_table(tmp_path / "captions").equals(pq.read_table(out / "captions"))
    for tar in sorted((out / "shards").glob("*.tar")):
        assert (tmp_path / "shards" / tar.name).read_bytes() == tar.read_bytes()


def test_a_finished_build_reruns_as_a_no_op_and_another_config_is_refused(coco_build, realdata):
    out, manifest = coco_build
    before = {p: p.stat().st_mtime_ns for p in (out / "shards").iterdir()}
    assert run_build(_coco_request(realdata, out)) == manifest
    assert {p: p.stat().st_mtime_ns for p in (out / "shards").iterdir()} == before
    with pytest.raises(BuildConflictError, match="--overwrite"):
        run_build(_coco_request(realdata, out, filters=["len=3..60"]))


def test_overwrite_replaces_a_build(realdata, tmp_path):
    run_build(_coco_request(realdata, tmp_path, images=None))
    manifest = run_build(_coco_request(realdata, tmp_path, filters=["len=12.."], images=None, overwrite=True))
    assert plan_specs(manifest) == ["clean", "unique_key", "len=12.."]
    rejected = pq.read_table(tmp_path / "rejected")
    assert set(rejected["filter"].to_pylist()) == {"len"}
    assert all(int(v) < 12 for v in rejected["filter_value"].to_pylist())
    assert len(rejected) + len(pq.read_table(tmp_path / "captions")) == 25
    assert not (tmp_path / "shards").exists()
