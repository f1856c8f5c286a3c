"""Fixtures of the trainer's tests: synthetic shards, tiny random towers, one short trained run."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the trainer's tests need the `train` extra: pip install 'capbuild[train]'")

from synthetic import save_tiny_towers, write_shards  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on 2 shared cores run several times faster on one intra-op thread (these modules only)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def towers(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return save_tiny_towers(tmp_path_factory.mktemp("towers"))


@pytest.fixture(scope="session")
def train_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("train-shards")
    write_shards(folder, 512, seed=1)
    return folder


@pytest.fixture(scope="session")
def val_shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One held-out image of every shape/colour/background combination (36), with a class label."""
    folder = tmp_path_factory.mktemp("val-shards")
    write_shards(folder, 36, seed=2, per_shard=18, label=True)
    return folder


def quick_config(out: Path, towers: tuple[Path, Path], shards: Path, **options):
    """A few-step configuration on the synthetic shards (options override)."""
    from capbuild.train.config import TrainConfig

    settings = {
        "data": [str(shards)],
        "vision": str(towers[0]),
        "text": str(towers[1]),
        "out": out,
        "steps": 4,
        "batch_size": 16,
        "lr": 5e-4,
        "warmup_steps": 2,
        "projection_dim": 32,
        "workers": 0,
        "log_every": 1,
        "augment": False,
        "shuffle_buffer": 50,
    }
    settings.update(options)
    return TrainConfig(**settings)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, towers, train_shards) -> Path:
    """200 steps of training on the synthetic shards (about 20 s on one core)."""
    from capbuild.train.trainer import train

    out = tmp_path_factory.mktemp("run") / "run"
    config = quick_config(out, towers, train_shards, steps=200, batch_size=32, warmup_steps=10, workers=1, log_every=10)
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a session fixture starts before the module-scoped one_thread
    try:
        train(config, show_progress=False)
    finally:
        torch.set_num_threads(before)
    return out
