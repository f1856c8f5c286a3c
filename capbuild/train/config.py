"""Options of a training run (no torch import): parsed by the CLI, saved in RUN_DIR/train_config.json."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from capbuild.errors import ConfigError, InputError
from capbuild.options import opt

CONFIG_NAME = "train_config.json"
OPTIMIZERS = ("adamw", "adabelief")


@dataclass
class TrainConfig:
    """Everything that decides a run. `batch_size` is per process (per GPU), as in open_clip."""

    data: list[str] = field(
        metadata=opt(
            "Build folder (its train split), `capbuild mix` folder (its sources and weights) or shard pattern "
            "('{00000..00099}.tar', glob, folder of tars); repeatable.",
            short="-d",
        )
    )
    vision: str = field(metadata=opt("Vision checkpoint (CLIP or ViT): local path or hub name."))
    text: str = field(metadata=opt("Text checkpoint (BERT/RoBERTa-like): local path or hub name."))
    out: Path = field(metadata=opt("Run folder: config, metrics.jsonl, checkpoint, final model.", short="-o"))
    weights: list[float] = field(default_factory=list, metadata=opt("Sampling weight of each --data.", cli=False))
    steps: int | None = field(default=None, metadata=opt("Optimizer steps (or give --epochs)."))
    epochs: float | None = field(default=None, metadata=opt("Passes over the data, counted from sizes.json."))
    batch_size: int = field(default=64, metadata=opt("Samples per step on each GPU/process."))
    lr: float = field(default=5e-5, metadata=opt("Peak learning rate."))
    weight_decay: float = field(default=0.1, metadata=opt("Decoupled weight decay (not on biases/norms)."))
    warmup_steps: int = field(default=500, metadata=opt("Linear warm-up before the cosine decay."))
    optimizer: str = field(default="adamw", metadata=opt("adamw, or adabelief (with adaptive gradient clipping)."))
    agc_clip: float = field(default=0.01, metadata=opt("Adaptive gradient clipping factor (adabelief only)."))
    logit_scale: float | None = field(default=None, metadata=opt("Fix the logit scale (e.g. 20); default learnable."))
    projection_dim: int = field(default=512, metadata=opt("Size of the shared embedding."))
    max_length: int = field(default=77, metadata=opt("Caption tokens kept."))
    freeze_steps: int = field(default=0, metadata=opt("Steps training only projections and scale first."))
    lock_image: bool = field(default=False, metadata=opt("Never train the vision tower (locked-image tuning)."))
    distill_from: str | None = field(
        default=None, metadata=opt("English CLIP teacher: student(caption) regresses teacher(caption_orig).")
    )
    distill_weight: float = field(default=1.0, metadata=opt("Weight of the distillation MSE."))
    augment: bool = field(default=True, metadata=opt("Image augmentation (--no-augment: none)."))
    resample: bool = field(
        default=True, metadata=opt("Resample shards with replacement (--no-resample: epoch-wise shuffled shards).")
    )
    shuffle_buffer: int = field(default=1000, metadata=opt("Samples shuffled in each worker."))
    workers: int = field(default=4, metadata=opt("Loader worker processes per GPU.", operational=True))
    seed: int = field(default=0, metadata=opt("Random seed."))
    precision: str = field(default="bf16", metadata=opt("bf16 (autocast on GPU) or fp32."))
    save_every: int = field(default=1000, metadata=opt("Steps between checkpoints.", operational=True))
    log_every: int = field(default=10, metadata=opt("Steps between metrics.jsonl lines.", operational=True))
    resume: bool = field(default=False, metadata=opt("Continue the run in --out from its checkpoint."))

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if not self.data:
            raise ConfigError("give at least one --data shard pattern, e.g. 'OUT/shards/{00000..00099}.tar'")
        self.data = [anchored(entry) for entry in self.data]
        if self.weights and len(self.weights) != len(self.data):
            raise ConfigError(f"--weights has {len(self.weights)} values for {len(self.data)} --data patterns")
        if any(w <= 0 for w in self.weights):
            raise ConfigError("--weights must all be positive")
        if (self.steps is None) == (self.epochs is None):
            raise ConfigError("give exactly one of --steps or --epochs")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"--optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r})")
        if self.precision not in ("bf16", "fp32"):
            raise ConfigError(f"--precision must be bf16 or fp32 (got {self.precision!r})")
        if self.logit_scale is not None and self.logit_scale <= 0:
            raise ConfigError("--logit-scale must be positive (clip-italian used 20)")
        if self.batch_size < 2:
            raise ConfigError("--batch-size must be at least 2: the contrastive loss needs negatives")

    def to_json(self) -> dict[str, Any]:
        config = asdict(self)
        config["out"] = str(self.out)
        return config

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_NAME).write_text(json.dumps(self.to_json(), indent=2) + "\n")


def anchored(entry: str) -> str:
    """A local --data value as an absolute path, so that the run's saved config names the same data
    from any folder (`capbuild eval` reads it to check for contamination); URLs and pipes as given."""
    if "://" in entry or entry.startswith("pipe:"):
        return entry
    return str(Path(entry).expanduser().absolute())


def load_config(folder: Path) -> TrainConfig:
    """The configuration a run in `folder` was started with."""
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise InputError(f"{path} not found: is {folder} a `capbuild train` run folder?")
    return TrainConfig(**json.loads(path.read_text()))


@dataclass
class EvalRequest:
    """What to evaluate: retrieval on `data` (build folders or shards, one set each), zero-shot on
    `images` (or on labelled `data`)."""

    model: str = field(
        metadata=opt(
            "A capbuild train run, a local Hugging Face CLIP-like folder (CLIPModel, SiglipModel, "
            "VisionTextDualEncoderModel) or open_clip:ARCH[:WEIGHTS_FILE].",
            short="-m",
        )
    )
    data: list[str] = field(
        default_factory=list,
        metadata=opt(
            "Evaluation set: a build folder (its test split, or its only split) or a shard pattern; repeatable. "
            "Retrieval is reported per set and language.",
            short="-d",
        ),
    )
    classes: Path | None = field(default=None, metadata=opt("Class names, one a line, in the target language."))
    templates: Path | None = field(default=None, metadata=opt("Prompt templates, one a line, '{}' for the class."))
    images: Path | None = field(
        default=None, metadata=opt("ImageNet-style folder: one sub-folder per class, sorted as --classes.")
    )
    batch_size: int = field(default=128, metadata=opt("Images or captions embedded at once.", operational=True))
    workers: int = field(default=2, metadata=opt("Loader worker processes.", operational=True))
    device: str | None = field(
        default=None, metadata=opt("cpu, cuda, cuda:1 (default: a GPU if any).", operational=True)
    )

    def __post_init__(self) -> None:
        self.model = str(self.model)
