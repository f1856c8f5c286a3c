"""The score model of an image-filter run and the embedding pass it drives, in one of two places:

- in this process (`--executor local`): one encoder per GPU, else one on the CPU;
- on Ray actors (`--executor ray`): one actor per GPU of the cluster (num_gpus=1), else CPU actors
  that each hold their loader processes' CPUs; each actor loads the model once and embeds whole
  shards, handed out one at a time to whichever actor is free. A shard's file is written atomically
  under a fixed name, so an actor that dies (Ray restarts it and retries the shard) can neither lose
  nor double a row, and a killed run resumes at the first unfinished shard either way.

The embeddings do not depend on where they were computed beyond floating-point rounding; the model's
fingerprint (in each file) decides whether a saved shard is reused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from capbuild.imagefilters.embed import (
    PassOptions,
    ShardIndexes,
    default_loader_workers,
    embed_shards,
    index_shards,
    pass_progress,
    pending_shards,
)
from capbuild.ray_session import RESTARTS, RaySession
from capbuild.stages.text.executors.base import ExecutorOptions


class Scorer(ABC):
    """The score model's identity (`name`, `fingerprint`) and the pass that embeds shards with it."""

    name: str
    fingerprint: str

    @abstractmethod
    def embed(self, indexes: ShardIndexes, folder: Path, needs_orig: bool, options: PassOptions) -> dict[str, int]:
        """Write folder/NNNNN.parquet for every shard of `indexes` not already done; returns counts."""

    @abstractmethod
    def close(self) -> None:
        """Release what the scorer holds."""


class LocalScorer(Scorer):
    """The model in this process: one encoder per GPU (or on the one device asked for), else the CPU."""

    def __init__(self, spec: str, device: str | None) -> None:
        import torch

        from capbuild.models.dual_encoder import load_dual_encoder

        if device is None and torch.cuda.device_count() > 1:
            self.encoders = [load_dual_encoder(spec, f"cuda:{i}") for i in range(torch.cuda.device_count())]
        else:
            self.encoders = [load_dual_encoder(spec, device)]
        self.name, self.fingerprint = self.encoders[0].name, self.encoders[0].fingerprint

    def embed(self, indexes: ShardIndexes, folder: Path, needs_orig: bool, options: PassOptions) -> dict[str, int]:
        return embed_shards(indexes, folder, self.encoders, needs_orig, options)

    def close(self) -> None:
        """Nothing to release: the encoders go with the scorer."""


class EmbeddingWorker:
    """A Ray actor: loads the score model once, then embeds whole shards."""

    def __init__(self, spec: str, device: str | None) -> None:
        from capbuild.models.dual_encoder import load_dual_encoder

        self.encoder = load_dual_encoder(spec, device)

    def identity(self) -> tuple[str, str]:
        return self.encoder.name, self.encoder.fingerprint

    def embed(self, shard: str, folder: str, needs_orig: bool, options: PassOptions) -> dict[str, int]:
        indexes = index_shards([Path(shard)])
        return embed_shards(indexes, Path(folder), [self.encoder], needs_orig, options, show_progress=False)


class RayScorer(Scorer):
    """The model on Ray actors: one per GPU, else CPU actors of 1 + their loader processes' CPUs each.
    Loader processes per actor: as asked, else the cluster's CPUs per GPU but one, or 2 on the CPU."""

    def __init__(self, spec: str, device: str | None, executor: ExecutorOptions, loader_workers: int | None) -> None:
        self.session = RaySession(executor.address, executor.workers, needed_for="--executor ray")
        try:
            cpus, gpus = self.session.resources()
            on_gpu = gpus > 0 and device != "cpu"
            if loader_workers is None:
                loader_workers = default_loader_workers(on_gpu, cpus // gpus if on_gpu else cpus)
            self.loader_workers = loader_workers
            self.actors = self._start(spec, on_gpu, cpus, gpus, executor.workers)
            self.name, self.fingerprint = self.session.ray.get(self.actors[0].identity.remote())
        except BaseException:
            self.close()
            raise

    def _start(self, spec: str, on_gpu: bool, cpus: int, gpus: int, wanted: int) -> list[Any]:
        # GPU actors take no CPU so that one per GPU always fits; CPU actors take their loaders' CPUs,
        # and no more actors are started than fit (an actor waiting for resources would stall the pass).
        per_actor = 0 if on_gpu else 1 + self.loader_workers
        fit = gpus if on_gpu else max(1, cpus // per_actor)
        count = max(1, min(wanted or fit, fit))
        worker = self.session.ray.remote(EmbeddingWorker).options(
            num_cpus=min(per_actor, max(cpus, 1)),
            num_gpus=1 if on_gpu else 0,
            max_restarts=RESTARTS,
            max_task_retries=RESTARTS,
        )
        return [worker.remote(spec, None if on_gpu else "cpu") for _ in range(count)]

    def embed(self, indexes: ShardIndexes, folder: Path, needs_orig: bool, options: PassOptions) -> dict[str, int]:
        folder.mkdir(parents=True, exist_ok=True)
        todo = pending_shards(indexes, folder, self.fingerprint, needs_orig)
        counts = Counter(reused_shards=len(indexes) - len(todo), embedded_shards=len(todo))
        label = f"image filters: embedding on {len(self.actors)} Ray actor(s)"
        actor_options = replace(options, workers=self.loader_workers)
        with pass_progress() as progress:
            bar = progress.add_task(label, total=sum(len(indexes[s]) for s in todo))

            def done(shard: Path, result: dict[str, int]) -> None:
                counts["undecodable"] += result.get("undecodable", 0)
                progress.advance(bar, len(indexes[shard]))

            self.session.run_on_actors(
                self.actors,
                todo,
                submit=lambda actor, shard: actor.embed.remote(str(shard), str(folder), needs_orig, actor_options),
                on_done=done,
                failure=lambda shard: (
                    f"a Ray worker failed embedding {shard.name}; finished shards are kept: "
                    "re-run the same command to resume"
                ),
            )
        return dict(counts)

    def close(self) -> None:
        for actor in getattr(self, "actors", []):
            self.session.ray.kill(actor, no_restart=True)
        self.session.close()


@contextmanager
def open_scorer(
    spec: str | None, device: str | None, executor: ExecutorOptions | None, loader_workers: int | None
) -> Iterator[Scorer | None]:
    """The scorer of `spec` (None without a model), where the executor says; closed on exit."""
    if spec is None:
        yield None
        return
    if executor is not None and executor.name == "ray":
        scorer: Scorer = RayScorer(spec, device, executor, loader_workers)
    else:
        scorer = LocalScorer(spec, device)
    try:
        yield scorer
    finally:
        scorer.close()
