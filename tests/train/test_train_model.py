"""Which parameters each training mode moves, and the losses (gathered across ranks too)."""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from capbuild.train.loss import contrastive_loss, distillation_loss
from capbuild.train.model import ContrastiveModel, build_model, set_trainable, text_embeddings


@pytest.fixture()
def model(towers):
    return build_model(str(towers[0]), str(towers[1]), projection_dim=32)[0]


def _trainable(model) -> set[str]:
    return {name.split(".")[0] for name, p in model.named_parameters() if p.requires_grad}


def test_freeze_stage_trains_only_projections_and_scale(model):
    set_trainable(model, backbones=False, lock_image=False, learn_scale=True)
    assert _trainable(model) == {"visual_projection", "text_projection", "logit_scale"}
    assert not model.vision_model.training and not model.text_model.training
    set_trainable(model, backbones=True, lock_image=False, learn_scale=True)
    assert _trainable(model) == {"vision_model", "text_model", "visual_projection", "text_projection", "logit_scale"}


def test_lock_image_keeps_the_vision_tower_but_trains_its_projection(model):
    set_trainable(model, backbones=True, lock_image=True, learn_scale=False)
    assert _trainable(model) == {"text_model", "visual_projection", "text_projection"}


def test_fixed_logit_scale(towers):
    model, _ = build_model(str(towers[0]), str(towers[1]), projection_dim=32, logit_scale=20)
    assert model.logit_scale.exp().item() == pytest.approx(20)


def _batch(processor, count: int = 4):
    torch.manual_seed(0)
    texts = [
        "un cerchio rosso su sfondo blu",
        "un quadrato verde su sfondo giallo",
        "un triangolo blu",
        "un cerchio giallo",
    ]
    tokens = processor.tokenizer(texts[:count], padding=True, return_tensors="pt")
    return torch.randn(count, 3, 32, 32), {"input_ids": tokens["input_ids"], "attention_mask": tokens["attention_mask"]}


def test_distillation_moves_only_the_student_text_tower_and_projection(towers):
    student, processor = build_model(str(towers[0]), str(towers[1]), projection_dim=32)
    teacher, _ = build_model(str(towers[0]), str(towers[1]), projection_dim=32)
    teacher.requires_grad_(False)
    pixels, tokens = _batch(processor)
    _, _, distill = ContrastiveModel(student)(pixels, tokens, distill_text=tokens)
    target = text_embeddings(teacher, tokens)
    distillation_loss(distill, target, torch.tensor([True, True, False, True])).backward()
    moved = {
        name.split(".")[0] for name, p in student.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0
    }
    assert moved == {"text_model", "text_projection"}
    assert all(p.grad is None for p in teacher.parameters())


def test_distillation_loss_ignores_samples_without_an_original():
    student = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert distillation_loss(student, teacher, torch.tensor([True, False])).item() == 0.0
    assert distillation_loss(student, teacher, torch.tensor([False, True])).item() == pytest.approx(2.0)
    assert distillation_loss(student, teacher, torch.tensor([False, False])).item() == 0.0


def test_contrastive_loss_is_symmetric_infonce():
    images = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=-1)
    scale = torch.tensor(math.log(2.0))
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(0)))  # same in both directions
    assert contrastive_loss(images, images, scale).item() == pytest.approx(expected)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_loss(rank: int, world: int, port: int, images, texts, results) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    half = images.shape[0] // world
    local_images = images[rank * half : (rank + 1) * half].clone().requires_grad_(True)
    local_texts = texts[rank * half : (rank + 1) * half].clone().requires_grad_(True)
    loss = contrastive_loss(local_images, local_texts, torch.tensor(math.log(20.0)))
    loss.backward()
    results[rank] = (loss.item(), local_images.grad, local_texts.grad)
    dist.destroy_process_group()


@pytest.mark.slow
def test_loss_over_two_ranks_with_gathered_embeddings_equals_the_whole_batch_loss():
    torch.manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    texts = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    whole_images, whole_texts = images.clone().requires_grad_(True), texts.clone().requires_grad_(True)
    whole = contrastive_loss(whole_images, whole_texts, torch.tensor(math.log(20.0)))
    whole.backward()
    results = mp.Manager().dict()
    mp.spawn(_rank_loss, args=(2, _free_port(), images, texts, results), nprocs=2)
    # each rank's loss covers its own rows against all columns: their mean is the whole batch's loss;
    # gathered gradients sum over ranks, and DDP's averaging of parameter gradients divides by 2 again
    assert (results[0][0] + results[1][0]) / 2 == pytest.approx(whole.item(), rel=1e-5)
    assert torch.allclose(torch.cat([results[0][1], results[1][1]]) / 2, whole_images.grad, atol=1e-6)
    assert torch.allclose(torch.cat([results[0][2], results[1][2]]) / 2, whole_texts.grad, atol=1e-6)
