"""What a build asks of the image filters: the options of the pass and the request a build carries.
Light to import (the CLI builds its options from these); the stage itself loads on use."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from capbuild.errors import ConfigError
from capbuild.options import opt

if TYPE_CHECKING:
    from capbuild.stages.text.executors.base import ExecutorOptions


def let_idle_openmp_threads_sleep() -> None:
    """OMP_WAIT_POLICY=PASSIVE for this process, unless the user set it. A score model on the CPU shares
    the cores with the pass's loader workers; OpenMP threads that spin between the model's short
    operations take the loaders' time (BENCHMARKS.md). OpenMP reads it when torch loads: call this first."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass(frozen=True)
class ImageFilterOptions:
    """How the image-filter pass runs; only `embedding_dtype` decides output."""

    batch_size: int = field(
        default=256,
        metadata=opt(
            "Images per batch of the embedding pass (one forward pass on a GPU).",
            flag="--score-batch-size",
            operational=True,
        ),
    )
    workers: int | None = field(
        default=None,
        metadata=opt(
            "Loader processes decoding and hashing images, and embedding them and their captions when the "
            "model is on the CPU (default: every core but one when the model is on a GPU, else every core; "
            "at most 32).",
            flag="--score-workers",
            operational=True,
        ),
    )
    device: str | None = field(
        default=None,
        metadata=opt(
            "Score-model device: cpu, cuda, cuda:N (default: every GPU, else CPU).",
            flag="--score-device",
            operational=True,
        ),
    )
    embedding_dtype: str = field(
        default="float16", metadata=opt("float16 or float32 for the saved embeddings/.", flag="--embedding-dtype")
    )

    def __post_init__(self) -> None:
        if self.embedding_dtype not in ("float16", "float32"):
            raise ConfigError(f"--embedding-dtype must be float16 or float32 (got {self.embedding_dtype!r})")
        if self.batch_size < 1 or (self.workers is not None and self.workers < 0):
            raise ConfigError("--score-batch-size must be positive and --score-workers not negative")


@dataclass(frozen=True)
class ImageFilterRequest:
    """The image filters a build runs after its image stage: specs in order, the score model, options."""

    specs: tuple[str, ...]
    score_model: str | None = None
    options: ImageFilterOptions = field(default_factory=ImageFilterOptions)

    def config(self) -> dict[str, Any]:
        """The output-deciding part, for the build's fingerprint."""
        from capbuild.imagefilters.specs import parse_image_filters

        return {
            "filters": [f.describe() for f in parse_image_filters(list(self.specs))],
            "score_model": self.score_model,
            "embedding_dtype": self.options.embedding_dtype,
        }

    def check(self) -> None:
        """Fail before anything is written: bad specs, a missing score model, open_clip not installed."""
        from capbuild.imagefilters.specs import parse_image_filters

        filters = parse_image_filters(list(self.specs))
        if any(f.needs_model for f in filters) and not self.score_model:
            raise ConfigError(f"{', '.join(f.describe() for f in filters if f.needs_model)} need(s) --score-model")
        if self.score_model:
            from capbuild.models.dual_encoder import check_dual_encoder

            check_dual_encoder(self.score_model)

    def run(self, out: Path, executor: ExecutorOptions | None = None) -> dict[str, Any]:
        """Run the filters on the build in `out`; the embedding pass on Ray actors with a Ray executor."""
        from capbuild.imagefilters.stage import run_image_filters

        return run_image_filters(out, list(self.specs), self.score_model, self.options, executor)
