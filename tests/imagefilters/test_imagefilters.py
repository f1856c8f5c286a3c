"""The image filters on real builds of procedural pictures (see tests/imagefilter_data.py), with tiny
random score models: what each filter drops is recomputed here from the saved embeddings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("faiss", reason="the image filters need faiss-cpu: pip install 'capbuild[imagefilters]'")
pytest.importorskip("torch", reason="the image filters need the `train` extra: pip install 'capbuild[train]'")

import pyarrow as pa
import pyarrow.parquet as pq
import webdataset as wds

from capbuild.imagefilters import ImageFilterOptions, run_image_filters
from capbuild.imagefilters.embed import matrix
from capbuild.table import read_parts
from tests.dual_encoders import save_clip, save_tiny_open_clip, save_tiny_run
from tests.imagefilter_data import COPIES, RESIZED, Picture, build, write_coco, write_pictures

pytestmark = pytest.mark.slow
OPTIONS = ImageFilterOptions(batch_size=8, workers=1)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("imagefilters")
    pictures = write_pictures(root / "site")
    build(root / "build", write_coco(root / "site", pictures))
    return root / "build"


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> str:
    return str(save_clip(tmp_path_factory.mktemp("clip") / "clip"))


@pytest.fixture
def out(built, tmp_path) -> Path:
    shutil.copytree(built, tmp_path / "out")
    return tmp_path / "out"


def samples(folder: Path) -> dict[str, dict]:
    """Every sample of the tars in folder: key -> KEY.json."""
    tars = sorted(str(p) for p in folder.glob("*.tar"))
    return {s["__key__"]: json.loads(s["json"]) for s in wds.WebDataset(tars, shardshuffle=False)} if tars else {}


def kind_of(meta: dict) -> tuple[int, str]:
    """(picture, kind) from the caption 'picture N kind'."""
    _, number, kind = meta["caption"].split()
    return int(number), kind


def saved_embeddings(out: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Keys, image and caption embeddings of every sample, in shard order, as saved (float16 -> float32)."""
    keys, images, texts = [], [], []
    for path in sorted((out / "embeddings").glob("*.parquet")):
        table = pq.read_table(path)
        keys += table["key"].to_pylist()
        images.append(matrix(table["image_embedding"])[0])
        texts.append(matrix(table["text_embedding"])[0])
    return keys, np.concatenate(images).astype(np.float32), np.concatenate(texts).astype(np.float32)


def test_phash_drops_exactly_the_copies_and_resizes(out):
    manifest = run_image_filters(out, ["phash=6"], options=OPTIONS)
    kept, rejected = samples(out / "shards"), samples(out / "rejected" / "images")
    assert sorted(kind_of(m) for m in rejected.values()) == sorted(
        [(i, "copy") for i in COPIES] + [(i, "resized") for i in RESIZED]
    )
    originals = {kind_of(m)[0]: key for key, m in kept.items() if kind_of(m)[1] == "original"}
    for meta in rejected.values():
        assert meta["filter"] == "phash=6"
        kept_key, distance = meta["filter_value"].split(" d=")
        assert kept_key == originals[kind_of(meta)[0]] and int(distance) <= 6
    assert len(kept) == 45 and all(len(m["phash"]) == 16 for m in kept.values())
    sizes = json.loads((out / "shards" / "sizes.json").read_text())
    assert sum(sizes.values()) == 45 and sizes["00003.tar"] == 10
    captions, dropped = read_parts(out / "captions"), read_parts(out / "rejected")
    assert sorted(captions["key"].to_pylist()) == sorted(kept)
    assert {r["key"] for r in dropped.to_pylist() if r["filter"] == "phash=6"} == set(rejected)
    record = manifest["counts"]["image_filters"][-1]
    assert record["filters"] == [{"filter": "phash=6", "dropped": 10}] and record["score_model"] is None
    assert record["per_split"] == {"train": {"before": 45, "after": 35}, "val": {"before": 10, "after": 10}}
    assert not (out / ".work").exists()


@pytest.mark.parametrize("kind", ["clip", "open_clip", "run"])
def test_clip_score_drops_exactly_the_rows_below_the_threshold(out, clip, kind, tmp_path):
    if kind == "open_clip":
        pytest.importorskip("open_clip", reason="needs the `openclip` extra")
        model = save_tiny_open_clip(tmp_path / "oc")
    else:
        model = clip if kind == "clip" else str(save_tiny_run(tmp_path / "run"))
    run_image_filters(out, ["clip_score=-1"], model, OPTIONS)  # scores everything, drops nothing
    keys, images, texts = saved_embeddings(out)
    cosine = np.einsum("ij,ij->i", images, texts)
    threshold = float(np.median(cosine))
    assert len(keys) == 55
    manifest = run_image_filters(out, [f"clip_score={threshold}"], model, OPTIONS)
    record = manifest["counts"]["image_filters"][-1]
    assert record["run"] == 2 and record["embedding_pass"]["reused_shards"] == 4
    rejected = samples(out / "rejected" / "images")
    expected = {key for key, c in zip(keys, cosine, strict=True) if c < threshold}
    assert set(rejected) == expected and 20 < len(expected) < 35
    kept = samples(out / "shards")
    by_key = dict(zip(keys, cosine, strict=True))
    assert all(abs(meta["clip_score"] - by_key[key]) < 1e-5 for key, meta in kept.items())
    assert sum(record["clip_score"]["histogram"].values()) == 55


def test_card_and_report_show_what_each_image_filter_dropped(out, clip):
    from capbuild.cards.card import write_card
    from capbuild.cards.html_report import render_html
    from capbuild.cards.report import build_report

    run_image_filters(out, ["phash=6", "clip_score=0.18"], clip, OPTIONS)
    card = write_card(out).read_text()
    section = card[card.index("## Image filters") : card.index("## Captions")]
    assert "| `phash=6` | 10 |" in section and "CLIPModel:clip" in section and "```text" in section
    report = build_report(out, per_group=50)
    assert [view.spec for view in report.image_filters] == ["phash=6", "clip_score=0.18"]
    phash, clip_score = report.image_filters
    assert len(phash.dropped) == 10 and all(s.thumbnail for s in phash.dropped)
    assert {s.key for s in phash.kept} == {s.reason.split()[0] for s in phash.dropped}
    lowest = [s.scores["clip_score"] for s in clip_score.kept]
    assert lowest == sorted(lowest) and min(lowest) >= 0.18 > max(s.scores["clip_score"] for s in clip_score.dropped)
    assert "phash=6" not in report.dropped  # text filters' section shows text filters only
    html = render_html(report)
    assert html.count('class="image-filter"') == 2


def test_caption_orig_is_scored_and_rows_without_one_fall_back(out, clip):
    """Translated rows score their English source; rows with no caption_orig score their caption."""
    from capbuild.images.shards import read_samples, write_samples

    without = set()
    for tar in sorted((out / "shards").glob("*.tar")):
        samples_ = []
        for number, (key, fields) in enumerate(read_samples(tar)):
            meta = json.loads(fields["json"])
            meta["caption_orig"] = None if number % 4 == 0 else f"an English caption of {meta['caption']}"
            if number % 4 == 0:
                without.add(key)
            samples_.append((key, {**fields, "json": json.dumps(meta).encode()}))
        write_samples(samples_, tar)
    manifest = run_image_filters(out, ["clip_score=-1:caption_orig"], clip, OPTIONS)
    assert manifest["counts"]["image_filters"][-1]["clip_score"]["fallback_to_caption"] == len(without)
    table = pa.concat_tables(pq.read_table(p) for p in sorted((out / "embeddings").glob("*.parquet")))
    images, texts = (matrix(table[c])[0].astype(np.float32) for c in ("image_embedding", "text_embedding"))
    origs, has_orig = matrix(table["text_orig_embedding"])
    keys = table["key"].to_pylist()
    assert {k for k, h in zip(keys, has_orig, strict=True) if not h} == without
    assert not np.allclose(origs[has_orig].astype(np.float32), texts[has_orig])
    scored = np.where(has_orig[:, None], origs.astype(np.float32), texts)
    expected = dict(zip(keys, np.einsum("ij,ij->i", images, scored), strict=True))
    kept = samples(out / "shards")
    assert len(kept) == 55 and all(abs(m["clip_score"] - expected[k]) < 1e-5 for k, m in kept.items())


def test_clip_top_keeps_the_best_half_of_each_split(out, clip):
    manifest = run_image_filters(out, ["clip_top=0.5"], clip, OPTIONS)
    keys, images, texts = saved_embeddings(out)
    cosine = dict(zip(keys, np.einsum("ij,ij->i", images, texts), strict=True))
    kept, rejected = samples(out / "shards"), samples(out / "rejected" / "images")
    for split, total in (("train", 45), ("val", 10)):
        split_kept = [k for k, m in kept.items() if m["split"] == split]
        split_dropped = [k for k, m in rejected.items() if m["split"] == split]
        assert len(split_kept) == round(total / 2 + 0.01) and len(split_kept) + len(split_dropped) == total
        assert min(cosine[k] for k in split_kept) >= max(cosine[k] for k in split_dropped)
    assert set(manifest["counts"]["image_filters"][-1]["filters"][0]["cutoffs"]) == {"train", "val"}


def test_near_dup_drops_what_the_saved_embeddings_say(out, clip):
    cos = 0.9995
    run_image_filters(out, [f"near_dup={cos}"], clip, OPTIONS)
    keys, images, _ = saved_embeddings(out)
    sims = images @ images.T
    assert np.abs(sims[np.triu_indices(len(keys), 1)] - cos).min() > 1e-4  # no pair on the edge
    expected: dict[str, tuple[str, float]] = {}
    kept: list[int] = []
    for row in range(len(keys)):
        close = [k for k in kept if sims[row, k] >= cos]
        if close:
            best = max(close, key=lambda k: (sims[row, k], -k))
            expected[keys[row]] = (keys[best], sims[row, best])
        else:
            kept.append(row)
    rejected = samples(out / "rejected" / "images")
    assert set(rejected) == set(expected) and len(expected) >= 5  # at least the exact copies
    for key, meta in rejected.items():
        kept_key, value = meta["filter_value"].split(" cos=")
        assert kept_key == expected[key][0] and abs(float(value) - expected[key][1]) < 1e-4
    assert {kind_of(m)[1] for m in rejected.values()} >= {"copy"}


def test_saved_vectors_are_written_plain(out, clip):
    """Dictionaries and statistics of float vectors cost 2.5x the write and serve no reader."""
    run_image_filters(out, ["clip_score=-1"], clip, OPTIONS)
    for path in sorted((out / "embeddings").glob("*.parquet")):
        group = pq.ParquetFile(path).metadata.row_group(0)
        columns = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
        for name in ("image_embedding", "text_embedding"):
            vector = columns[f"{name}.list.element"]
            assert "RLE_DICTIONARY" not in vector.encodings and not vector.is_stats_set
        assert columns["key"].is_stats_set


@pytest.fixture(scope="module")
def eval_build(tmp_path_factory) -> Path:
    """An evaluation build of pictures 0, 5, 20 and 21 under other names and ids."""
    root = tmp_path_factory.mktemp("eval")
    every = write_pictures(root / "all")
    renamed = []
    for picture in (p for p in every if p.kind == "original" and p.picture in (0, 5, 20, 21)):
        name = f"eval-{picture.picture}.jpg"
        (root / "site").mkdir(exist_ok=True)
        (root / "site" / name).write_bytes((root / "all" / picture.name).read_bytes())
        renamed.append(Picture(name, picture.picture, "original", "val"))
    build(root / "eval", write_coco(root / "site", renamed, first_id=1000))
    return root / "eval"


def test_decontaminate_images_drops_the_eval_pictures_under_other_names(out, eval_build):
    run_image_filters(out, [f"decontaminate_images={eval_build}:6"], options=OPTIONS)
    dropped = sorted(kind_of(m) for m in samples(out / "rejected" / "images").values())
    expected = [(0, "copy"), (0, "original"), (5, "original"), (5, "resized"), (20, "original"), (21, "original")]
    assert dropped == expected
    eval_keys = set(samples(eval_build / "shards"))
    assert all(m["filter_value"].split(" d=")[0] in eval_keys for m in samples(out / "rejected" / "images").values())
    assert not (eval_build / "embeddings").exists()  # the eval build is only read


DRIVER = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
import capbuild.imagefilters.apply as apply
import capbuild.imagefilters.embed as embed
from capbuild.imagefilters import ImageFilterOptions, run_image_filters

def killer(module, name, after):
    original, calls = getattr(module, name), [0]
    def wrapped(*args, **kwargs):
        result = original(*args, **kwargs)
        calls[0] += 1
        if calls[0] == after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    setattr(module, name, wrapped)

point = sys.argv[1]
if point == "embedding":
    killer(embed, "_write_shard", 2)
elif point == "shards":
    killer(apply, "write_samples", 3)  # shard 1 done, shard 2's rejected tar written, its kept tar not
elif point == "captions":
    killer(apply, "_write_atomic", 1)  # the rejected rows written, the caption part not yet
run_image_filters(Path(sys.argv[2]), sys.argv[4:], sys.argv[3], ImageFilterOptions(batch_size=8, workers=1))
"""


def output_files(out: Path) -> dict[str, bytes]:
    folders = ("shards", "rejected", "captions", "embeddings")
    paths = [p for folder in folders for p in sorted((out / folder).rglob("*")) if p.is_file()]
    return {str(p.relative_to(out)): p.read_bytes() for p in paths}


@pytest.mark.parametrize("point", ["embedding", "shards", "captions"])
def test_a_kill_then_a_rerun_gives_the_same_bytes(built, clip, tmp_path, point):
    specs = ["phash=6", "clip_score=0.15", "near_dup=0.998"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    shutil.copytree(built, reference)
    shutil.copytree(built, killed)
    run_image_filters(reference, specs, clip, OPTIONS)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(repo=str(REPO)))
    result = subprocess.run([sys.executable, str(driver), point, str(killed), clip, *specs], capture_output=True)
    assert result.returncode == -9, result.stderr.decode()[-2000:]
    assert (killed / ".work" / "imagefilters").is_dir()
    run_image_filters(killed, specs, clip, OPTIONS)
    assert output_files(killed) == output_files(reference)
    assert len(samples(killed / "rejected" / "images")) > 10
