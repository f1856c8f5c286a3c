"""End to end: training lowers the loss and lifts retrieval, the run reloads with from_pretrained,
each training mode moves exactly its parameters, --resume continues, the commands work."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import quick_config
from PIL import Image
from typer.testing import CliRunner

from capbuild.cli import app
from capbuild.train.evaluate import EvalRequest, evaluate
from capbuild.train.model import build_model
from capbuild.train.trainer import CHECKPOINT_NAME, METRICS_NAME, total_steps, train

CHANCE_MRR1 = 1 / 36  # 36 held-out images, one per shape/colour/background combination


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / METRICS_NAME).read_text().splitlines()]


@pytest.mark.slow
def test_training_lowers_the_loss_and_lifts_text_to_image_retrieval(trained_run: Path, val_shards: Path):
    losses = [m["loss"] for m in _metrics(trained_run)]
    assert len(losses) == 20
    assert sum(losses[-3:]) / 3 < sum(losses[:2]) / 2 - 1.0
    result = evaluate(EvalRequest(model=trained_run, data=[str(val_shards)], workers=0))
    assert list(result["retrieval"]) == [val_shards.name]
    retrieval = result["retrieval"][val_shards.name]["it"]
    assert (retrieval["images"], retrieval["captions"]) == (36, 108)
    assert retrieval["text_to_image"]["MRR@1"] > 5 * CHANCE_MRR1
    assert retrieval["image_to_text"]["R@10"] > 0.6


@pytest.mark.slow
def test_evaluation_counts_the_samples_it_skips(trained_run: Path, val_shards: Path, tmp_path: Path):
    import webdataset as wds

    good = next(iter(wds.WebDataset(str(val_shards / "00000.tar"), shardshuffle=False)))
    with wds.TarWriter(str(tmp_path / "00000.tar")) as sink:
        sink.write({k: good[k] for k in ("__key__", "jpg", "txt", "json")})
        sink.write({"__key__": "noimage", "txt": good["txt"], "json": good["json"]})
        sink.write({"__key__": "broken", "jpg": b"not a jpeg", "txt": good["txt"], "json": good["json"]})
        sink.write({k: (f"{good[k]}2" if k == "__key__" else good[k]) for k in ("__key__", "jpg", "txt", "json")})
    with pytest.warns(Warning):  # webdataset warns about the undecodable image
        result = evaluate(EvalRequest(model=trained_run, data=[str(tmp_path / "00000.tar")], workers=0))
    assert result["sets"][tmp_path.name]["images"] == 2
    assert result["sets"][tmp_path.name]["skipped"] == 2


def _features(output) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.pooler_output  # transformers 4 / 5


@pytest.mark.slow
def test_saved_run_reloads_with_from_pretrained_and_gives_the_same_embeddings(trained_run: Path, towers):
    from transformers import VisionTextDualEncoderModel, VisionTextDualEncoderProcessor

    reloaded = VisionTextDualEncoderModel.from_pretrained(trained_run).eval()
    processor = VisionTextDualEncoderProcessor.from_pretrained(trained_run)
    trained, _ = build_model(str(towers[0]), str(towers[1]), projection_dim=32)
    trained.load_state_dict(torch.load(trained_run / CHECKPOINT_NAME, weights_only=True)["model"])
    trained.eval()
    images = [Image.new("RGB", (32, 32), colour) for colour in ((220, 30, 30), (30, 60, 220))]
    inputs = processor(
        text=["un cerchio rosso su sfondo blu", "un quadrato verde"], images=images, return_tensors="pt", padding=True
    )
    with torch.no_grad():
        for model_a, model_b in ((reloaded, trained),):
            text_a = _features(
                model_a.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            )
            text_b = _features(
                model_b.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            )
            image_a = _features(model_a.get_image_features(pixel_values=inputs["pixel_values"]))
            image_b = _features(model_b.get_image_features(pixel_values=inputs["pixel_values"]))
    assert torch.allclose(text_a, text_b, atol=1e-6)
    assert torch.allclose(image_a, image_b, atol=1e-6)
    assert not torch.allclose(text_a[0], text_a[1])


def _changed(run: Path, towers, seed: int = 0, logit_scale: float | None = None) -> set[str]:
    """Top-level parts of the saved model that differ from the model training started from."""
    from transformers import VisionTextDualEncoderModel

    torch.manual_seed(seed)  # the trainer seeds before building, so the new projections are reproducible
    start, _ = build_model(str(towers[0]), str(towers[1]), projection_dim=32, logit_scale=logit_scale)
    end = VisionTextDualEncoderModel.from_pretrained(run)
    before = start.state_dict()
    return {name.split(".")[0] for name, value in end.state_dict().items() if not torch.equal(value, before[name])}


ALL_PARTS = {"vision_model", "text_model", "visual_projection", "text_projection", "logit_scale"}


def test_freeze_steps_train_projections_first_then_everything(tmp_path: Path, towers, train_shards):
    frozen = tmp_path / "frozen"
    train(quick_config(frozen, towers, train_shards, steps=3, freeze_steps=3), show_progress=False)
    assert _changed(frozen, towers) == {"visual_projection", "text_projection", "logit_scale"}
    two_stage = tmp_path / "two-stage"
    train(quick_config(two_stage, towers, train_shards, steps=4, freeze_steps=2), show_progress=False)
    assert [m["stage"] for m in _metrics(two_stage)] == ["projections", "projections", "all", "all"]
    assert _changed(two_stage, towers) == ALL_PARTS


def test_lock_image_with_a_fixed_scale_leaves_the_vision_tower_and_the_scale(tmp_path: Path, towers, train_shards):
    run = tmp_path / "locked"
    train(quick_config(run, towers, train_shards, lock_image=True, logit_scale=20.0), show_progress=False)
    assert _changed(run, towers, logit_scale=20.0) == {"text_model", "visual_projection", "text_projection"}
    assert all(m["logit_scale"] == pytest.approx(20.0) for m in _metrics(run))


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()))).hexdigest()


def test_distillation_from_a_teacher_logs_its_term_and_leaves_the_teacher(tmp_path: Path, towers, train_shards):
    teacher_dir = tmp_path / "teacher"
    teacher, processor = build_model(str(towers[0]), str(towers[1]), projection_dim=32)
    teacher.save_pretrained(teacher_dir)
    processor.save_pretrained(teacher_dir)
    before = _digest(teacher_dir)
    run = tmp_path / "distilled"
    train(quick_config(run, towers, train_shards, distill_from=str(teacher_dir), lock_image=True), show_progress=False)
    metrics = _metrics(run)
    assert all(
        m["distill"] > 0 and m["loss"] == pytest.approx(m["contrastive"] + m["distill"], rel=1e-5) for m in metrics
    )
    assert _changed(run, towers) == {"text_model", "visual_projection", "text_projection", "logit_scale"}
    assert _digest(teacher_dir) == before
    with pytest.raises(ValueError, match="--projection-dim 32"):
        train(quick_config(tmp_path / "bad", towers, train_shards, distill_from=str(teacher_dir), projection_dim=16))


def test_adabelief_with_adaptive_gradient_clipping_trains(tmp_path: Path, towers, train_shards):
    run = tmp_path / "adabelief"
    train(quick_config(run, towers, train_shards, optimizer="adabelief", steps=3), show_progress=False)
    assert all(math.isfinite(m["loss"]) for m in _metrics(run))
    assert _changed(run, towers) == ALL_PARTS


def test_resume_continues_from_the_last_checkpoint(tmp_path: Path, towers, train_shards):
    run = tmp_path / "resumed"
    train(quick_config(run, towers, train_shards, steps=4, save_every=2), show_progress=False)
    with pytest.raises(ValueError, match="--resume"):
        train(quick_config(run, towers, train_shards, steps=6))
    with pytest.raises(ValueError, match="lr"):
        train(quick_config(run, towers, train_shards, steps=6, lr=1e-3, resume=True))
    train(quick_config(run, towers, train_shards, steps=6, resume=True), show_progress=False)
    assert [m["step"] for m in _metrics(run)] == [1, 2, 3, 4, 5, 6]
    assert torch.load(run / CHECKPOINT_NAME, weights_only=True)["step"] == 6
    assert [m["lr"] for m in _metrics(run)][-1] == 0.0  # the schedule went on to its end


def test_epochs_count_samples_from_sizes_json(tmp_path: Path, towers, train_shards):
    config = quick_config(tmp_path / "run", towers, train_shards, steps=None, epochs=0.5)
    assert total_steps(config, [[str(p) for p in sorted(train_shards.glob("*.tar"))]], world=2) == math.ceil(256 / 32)


@pytest.mark.slow
def test_train_and_eval_commands(tmp_path: Path, towers, train_shards, val_shards):
    runner = CliRunner()
    run = tmp_path / "cli-run"
    args = [
        "train",
        "--data",
        str(train_shards / "{00000..00007}.tar"),
        "--vision",
        str(towers[0]),
        "--text",
        str(towers[1]),
        "--out",
        str(run),
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--projection-dim",
        "32",
        "--workers",
        "1",
        "--warmup-steps",
        "1",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (run / "model.safetensors").is_file() and len(_metrics(run)) == 1
    bad = runner.invoke(app, [*args[:-2], "--weights", "3,1"])
    assert bad.exit_code == 2 and "--weights has 2 values for 1 --data" in _said(bad)

    classes = tmp_path / "classes.txt"
    classes.write_text("cerchio\nquadrato\ntriangolo\n")
    templates = tmp_path / "templates.txt"
    templates.write_text("un {} colorato\nuna foto di un {}\n")
    result = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(run),
            "--data",
            str(val_shards),
            "--classes",
            str(classes),
            "--templates",
            str(templates),
            "--workers",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "MRR@1" in result.output and "top1" in result.output
    saved = json.loads((run / "eval.json").read_text())
    assert saved["retrieval"][val_shards.name]["it"]["images"] == 36 and set(saved["zero_shot"]) >= {
        "top1",
        "classes",
        "templates",
    }
    assert saved["zero_shot"]["classes"] == 3 and "top5" not in saved["zero_shot"]  # k past the classes is left out

    folder = tmp_path / "imagenet-style"
    import random

    from synthetic import draw

    rng = random.Random(0)
    for index, shape in enumerate(("cerchio", "quadrato", "triangolo")):
        (folder / f"n{index:03d}").mkdir(parents=True)
        for colour in ("rosso", "blu"):
            draw(shape, colour, "giallo", rng).save(folder / f"n{index:03d}" / f"{colour}.jpg")
    out = tmp_path / "zero-shot.json"
    result = runner.invoke(
        app,
        [
            "eval",
            "--model",
            str(run),
            "--images",
            str(folder),
            "--classes",
            str(classes),
            "--out",
            str(out),
            "--workers",
            "0",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["zero_shot"]["images"] == 6


def test_a_missing_train_extra_names_the_install_command(monkeypatch):
    import importlib.util

    from capbuild.errors import MissingExtraError
    from capbuild.train import require_train_extra

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "timm" else real(name, *a))
    with pytest.raises(MissingExtraError, match=r"pip install 'capbuild\[train\]'"):
        require_train_extra()


def test_clip_checkpoint_as_vision_tower_and_as_distillation_teacher(tmp_path: Path, towers, train_shards):
    from synthetic import save_tiny_clip
    from transformers import CLIPVisionModel, VisionTextDualEncoderModel

    clip = save_tiny_clip(tmp_path / "clip")
    run = tmp_path / "from-clip"
    config = quick_config(run, towers, train_shards, vision=str(clip), distill_from=str(clip), steps=2)
    train(config, show_progress=False)
    model = VisionTextDualEncoderModel.from_pretrained(run)
    assert isinstance(model.vision_model, CLIPVisionModel)
    assert all(m["distill"] > 0 for m in _metrics(run))


def _said(result) -> str:
    return " ".join(result.output.split())  # rich wraps long messages


def test_missing_shards_and_checkpoints_fail_with_what_to_fix(tmp_path: Path, towers, train_shards):
    runner = CliRunner()
    base = [
        "train",
        "--vision",
        str(towers[0]),
        "--text",
        str(towers[1]),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "2",
    ]
    result = runner.invoke(app, [*base, "--data", str(tmp_path / "{00000..00001}.tar")])
    assert result.exit_code == 2 and "no shard found" in _said(result)
    result = runner.invoke(app, [*base[:2], str(tmp_path / "no-vit"), *base[3:], "--data", str(train_shards)])
    assert result.exit_code == 2 and "--vision" in _said(result) and "not a folder" in _said(result)
    result = runner.invoke(app, ["eval", "--model", str(tmp_path / "no-run"), "--data", str(train_shards)])
    assert result.exit_code == 2 and "not a folder" in _said(result)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_torchrun_with_two_processes_trains_one_model(tmp_path: Path, towers, train_shards):
    import os
    import subprocess
    import sys

    capbuild = Path(sys.executable).parent / "capbuild"
    if not capbuild.is_file():
        pytest.skip(f"the capbuild command is not installed beside {sys.executable}")
    run = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(capbuild),
        "train", "--data", str(train_shards), "--vision", str(towers[0]), "--text", str(towers[1]), "--out", str(run),
        "--steps", "4", "--freeze-steps", "2", "--batch-size", "8", "--projection-dim", "32", "--workers", "1",
        "--log-every", "1", "--no-augment",
    ]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=240
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = _metrics(run)
    assert [m["step"] for m in metrics] == [1, 2, 3, 4]  # rank 0 alone writes
    assert [m["stage"] for m in metrics] == ["projections", "projections", "all", "all"]
    assert all(m["samples_per_s"] > 0 for m in metrics)
    assert _changed(run, towers) == ALL_PARTS
    assert done.stdout.count("done: step 4") + done.stderr.count("done: step 4") == 1
