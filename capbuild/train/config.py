"""Options of a training run (no torch import): parsed by the CLI, saved in RUN_DIR/train_config.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "train_config.json"
OPTIMIZERS = ("adamw", "adabelief")


@dataclass
class TrainConfig:
    """Everything that decides a run. `batch_size` is per process (per GPU), as in open_clip."""

    data: list[str]
    vision: str
    text: str
    out: Path
    weights: list[float] = field(default_factory=list)
    steps: int | None = None
    epochs: float | None = None
    batch_size: int = 64
    lr: float = 5e-5
    weight_decay: float = 0.1
    warmup_steps: int = 500
    optimizer: str = "adamw"
    agc_clip: float = 0.01
    logit_scale: float | None = None
    projection_dim: int = 512
    max_length: int = 77
    freeze_steps: int = 0
    lock_image: bool = False
    distill_from: str | None = None
    distill_weight: float = 1.0
    augment: bool = True
    resample: bool = True
    shuffle_buffer: int = 1000
    workers: int = 4
    seed: int = 0
    precision: str = "bf16"
    save_every: int = 1000
    log_every: int = 10
    resume: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if not self.data:
            raise ValueError("give at least one --data shard pattern, e.g. 'OUT/shards/{00000..00099}.tar'")
        if self.weights and len(self.weights) != len(self.data):
            raise ValueError(f"--weights has {len(self.weights)} values for {len(self.data)} --data patterns")
        if any(w <= 0 for w in self.weights):
            raise ValueError("--weights must all be positive")
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of --steps or --epochs")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r})")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"--precision must be bf16 or fp32 (got {self.precision!r})")
        if self.logit_scale is not None and self.logit_scale <= 0:
            raise ValueError("--logit-scale must be positive (clip-italian used 20)")
        if self.batch_size < 2:
            raise ValueError("--batch-size must be at least 2: the contrastive loss needs negatives")

    def to_json(self) -> dict[str, Any]:
        config = asdict(self)
        config["out"] = str(self.out)
        return config

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_NAME).write_text(json.dumps(self.to_json(), indent=2) + "\n")


def load_config(folder: Path) -> TrainConfig:
    """The configuration a run in `folder` was started with."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {folder} a `capbuild train` run folder?")
    return TrainConfig(**json.loads(path.read_text()))
