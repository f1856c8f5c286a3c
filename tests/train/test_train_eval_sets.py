"""`capbuild eval` across evaluation sets and languages, `--compare`, contamination warnings, and
`--data` as build and mixture folders for training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from dual_encoders import save_clip, save_tiny_run
from eval_builds import row, write_build
from typer.testing import CliRunner

from capbuild.cards.mix import make_mixture, read_mixture
from capbuild.cli import app
from capbuild.decontaminate import decontaminate_build
from capbuild.train import evaluate as evaluate_module
from capbuild.train.config import TrainConfig
from capbuild.train.contamination import training_data
from capbuild.train.evaluate import EvalRequest, compare_results, evaluate
from capbuild.train.sources import eval_data, pattern_name, train_sources

XTD_LANGS = ("es", "it", "ko")
XM_LANGS = ("ar", "sw")


def xtd_rows() -> list[dict]:
    return [
        row("xtd10", f"{lang}/{i}", f"coco:{i}", [f"{lang} foto numero {i}"], lang, "test")
        for lang in XTD_LANGS
        for i in range(1, 13)
    ]


def xm_rows() -> list[dict]:
    rows = []
    for i in range(8):
        key = f"{i:016x}"
        for lang in XM_LANGS:
            if lang == "sw" and i >= 6:
                continue  # not every image has every language
            captions = [f"{lang} picha {i} nambari {j}" for j in range(1 + i % 3)]
            rows.append(row("xm3600", f"{lang}/{key}", f"openimages:{key}", captions, lang, "test"))
    return rows


def train_rows() -> list[dict]:
    return [row("coco", str(i), f"coco:{i}", [f"train caption {i}"], "it", "train") for i in range(5, 30)]


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval-sets")
    return {
        "xtd10": write_build(root / "xtd10", "xtd10", xtd_rows()),
        "xm3600": write_build(root / "xm3600", "xm3600", xm_rows(), shard_size=5),
        "xtd10-it": write_build(root / "xtd10-it", "xtd10", [r for r in xtd_rows() if r["lang"] == "it"]),
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return save_tiny_run(tmp_path_factory.mktemp("model") / "run")


class CountingEncoder:
    """The real encoder, counting the images it embeds."""

    def __init__(self, encoder) -> None:
        self.encoder = encoder
        self.images = 0

    def __getattr__(self, name):
        return getattr(self.encoder, name)

    def encode_images(self, pixels):
        self.images += len(pixels)
        return self.encoder.encode_images(pixels)


def _evaluate(monkeypatch, model, data, **kwargs):
    counters = []
    real = evaluate_module.load_dual_encoder

    def counting(spec, device=None):
        counters.append(CountingEncoder(real(spec, device)))
        return counters[-1]

    monkeypatch.setattr(evaluate_module, "load_dual_encoder", counting)
    result = evaluate(EvalRequest(model=model, data=[str(d) for d in data], workers=0, **kwargs))
    return result, counters[0].images


def test_one_row_per_set_and_language_images_embedded_once_per_set(monkeypatch, run, sets):
    result, embedded = _evaluate(monkeypatch, run, [sets["xtd10"], sets["xm3600"]])
    assert embedded == 12 + 8  # 36 xtd10 samples, 14 xm3600 samples: one image pass per distinct image
    assert {name: sorted(langs) for name, langs in result["retrieval"].items()} == {
        "xtd10": list(XTD_LANGS),
        "xm3600": list(XM_LANGS),
    }
    assert result["sets"]["xtd10"]["images"] == 12 and result["sets"]["xtd10"]["samples"] == 36
    assert result["sets"]["xm3600"]["skipped"] == 0
    it = result["retrieval"]["xtd10"]["it"]
    assert (it["images"], it["captions"]) == (12, 12)
    sw = result["retrieval"]["xm3600"]["sw"]
    assert (sw["images"], sw["captions"]) == (6, sum(1 + i % 3 for i in range(6)))
    assert set(it["text_to_image"]) == {"MRR@1", "MRR@5", "MRR@10", "R@1", "R@5", "R@10"}
    assert set(it["image_to_text"]) >= {"R@1", "R@5", "R@10", "mAP"}
    cells = [cell for langs in result["retrieval"].values() for cell in langs.values()]
    assert result["mean"]["cells"] == 5
    for direction in ("text_to_image", "image_to_text"):
        for metric, value in result["mean"][direction].items():
            assert value == pytest.approx(np.mean([c[direction][metric] for c in cells]))


def test_a_language_scores_as_a_set_of_that_language_alone(monkeypatch, run, sets):
    together, _ = _evaluate(monkeypatch, run, [sets["xtd10"]])
    alone, _ = _evaluate(monkeypatch, run, [sets["xtd10-it"]])
    assert alone["retrieval"]["xtd10"]["it"] == together["retrieval"]["xtd10"]["it"]


def test_a_build_is_evaluated_on_its_test_split_or_its_only_split(tmp_path: Path):
    rows = [r for r in xtd_rows() if r["lang"] == "it"]
    mixed = write_build(
        tmp_path / "mixed", "xtd10", [{**r, "split": "train"} if i < 4 else r for i, r in enumerate(rows)]
    )
    data = eval_data(str(mixed))
    assert data.name == "xtd10" and [Path(u).name for u in data.urls] == ["00001.tar"]
    only = write_build(tmp_path / "only-train", "coco", train_rows())
    assert len(eval_data(str(only)).urls) == 2
    val = [{**r, "split": "val"} if i < 3 else r for i, r in enumerate(train_rows())]
    no_test = write_build(tmp_path / "no-test", "coco", val)
    with pytest.raises(ValueError, match="has splits val, train but no 'test'"):
        eval_data(str(no_test))
    assert pattern_name(str(mixed / "shards" / "{00000..00001}.tar")) == "mixed"
    assert pattern_name(str(mixed / "shards")) == "mixed"


def test_eval_command_table_json_and_compare(run, sets, tmp_path: Path):
    runner = CliRunner()
    out = tmp_path / "eval.json"
    args = ["eval", "--model", str(run), "--data", str(sets["xtd10"]), "--data", str(sets["xm3600"]), "--workers", "0"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    for text in ("xtd10", "xm3600", "MRR@1", "mAP", "mean"):
        assert text in result.output
    saved = json.loads(out.read_text())
    assert set(saved["retrieval"]["xtd10"]) == set(XTD_LANGS)
    other = json.loads(out.read_text())
    other["retrieval"]["xtd10"]["it"]["text_to_image"]["R@1"] -= 0.25
    del other["retrieval"]["xm3600"]
    other_path = tmp_path / "other.json"
    other_path.write_text(json.dumps(other))
    diff = compare_results(saved, other)
    assert diff[("xtd10", "it")]["t2i R@1"] == pytest.approx(0.25)
    assert diff[("xtd10", "es")]["t2i R@1"] == 0 and ("xm3600", "ar") not in diff
    compared = runner.invoke(app, [*args, "--out", str(tmp_path / "again.json"), "--compare", str(other_path)])
    assert compared.exit_code == 0, compared.output
    assert "minus" in compared.output and "+0.250" in compared.output
    assert "in one result only" in compared.output


def test_clip_folder_as_model(monkeypatch, sets, tmp_path: Path):
    result, embedded = _evaluate(monkeypatch, save_clip(tmp_path / "clip"), [sets["xtd10-it"]])
    assert embedded == 12 and result["retrieval"]["xtd10"]["it"]["images"] == 12
    assert result["warnings"] == []  # not a capbuild run: its training data is unknown


def test_open_clip_model(monkeypatch, sets, tmp_path: Path):
    pytest.importorskip(
        "open_clip", reason="open_clip models need the `openclip` extra: pip install 'capbuild[openclip]'"
    )
    from dual_encoders import save_tiny_open_clip

    result, _ = _evaluate(monkeypatch, save_tiny_open_clip(tmp_path / "oc"), [sets["xtd10-it"]])
    assert result["retrieval"]["xtd10"]["it"]["images"] == 12


def _run_trained_on(folder: Path, run: Path, data: list[str]) -> Path:
    import shutil

    shutil.copytree(run, folder)
    TrainConfig(data=data, vision="vit", text="bert", out=folder, steps=1, max_length=24).save(folder)
    return folder


def test_eval_warns_about_training_data_not_decontaminated(monkeypatch, run, sets, tmp_path: Path):
    train = write_build(tmp_path / "coco-it", "coco", train_rows())
    model = _run_trained_on(tmp_path / "run", run, [str(train), str(tmp_path / "raw-shards")])
    result, _ = _evaluate(monkeypatch, model, [sets["xtd10-it"], sets["xm3600"]])
    warnings = result["warnings"]
    assert any("raw-shards is not a capbuild build" in w for w in warnings)
    xtd = [w for w in warnings if "xtd10 (it)" in w]
    assert len(xtd) == 1 and "8 of its 12 images are in the training table" in xtd[0]  # coco:5..12
    xm = [w for w in warnings if "xm3600" in w]
    assert len(xm) == 1 and "0 of its 8 images" in xm[0]
    decontaminate_build(train, [sets["xtd10-it"]], show_progress=False)
    again, _ = _evaluate(monkeypatch, model, [sets["xtd10"]])  # the same images in three languages
    assert not [w for w in again["warnings"] if "xtd10" in w]


def test_a_run_started_with_a_relative_data_path_names_its_build_from_any_folder(
    monkeypatch, run, sets, tmp_path: Path
):
    train = write_build(tmp_path / "coco-it", "coco", train_rows())
    monkeypatch.chdir(tmp_path)
    model = _run_trained_on(tmp_path / "run", run, ["coco-it", "coco-it/shards/{00000..00001}.tar", "s3://b/x.tar"])
    assert training_data(model) == [str(train), f"{train}/shards/{{00000..00001}}.tar", "s3://b/x.tar"]
    monkeypatch.chdir(model)  # `capbuild eval` from another folder
    result, _ = _evaluate(monkeypatch, model, [sets["xtd10-it"]])
    assert not any("coco-it" in w and "not a capbuild build" in w for w in result["warnings"])
    assert any("8 of its 12 images are in the training table" in w for w in result["warnings"])


def test_train_data_from_builds_and_mixtures(sets, tmp_path: Path):
    train = write_build(tmp_path / "coco-it", "coco", train_rows(), shard_size=10)
    other = write_build(tmp_path / "more", "coco", train_rows()[:8])
    sources, weights = train_sources([str(train)], [])
    assert sources == [[str(train / "shards" / f"{i:05d}.tar") for i in range(3)]] and weights == []
    mix = tmp_path / "mix"
    make_mixture([train, other], [3.0, 1.0], mix, copy=True)
    assert [s.name for s in read_mixture(str(mix))] == ["coco-it", "more"]  # a str path reads too
    sources, weights = train_sources([str(mix), str(other)], [1.0, 1.0])
    assert weights == [0.75, 0.25, 1.0] and len(sources) == 3
    assert all(Path(s).is_file() and s.startswith(str(mix.resolve())) for s in sources[0])
    with pytest.raises(ValueError, match="no 'train' split"):
        train_sources([str(sets["xtd10"])], [])


def test_mix_copy_prints_a_command_that_works_from_anywhere(tmp_path: Path):
    train = write_build(tmp_path / "coco-it", "coco", train_rows())
    result = CliRunner().invoke(app, ["mix", str(train), "--out", str(tmp_path / "mix"), "--copy"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"capbuild train --data {tmp_path / 'mix'}" in said
