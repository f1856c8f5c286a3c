"""The Ray executor: each stateless segment runs on a pool of Ray actors that hold its filters.

An actor per CPU (or, for a segment with a GPU filter, one per GPU with num_gpus=1; one per CPU on a
cluster without GPUs) is built from the segment's filter specs, so each loads its model once.
Partitions are handed out one at a time to whichever actor is free. An actor whose process dies is
restarted by Ray and its partition retried; the partition's files are written atomically under a
fixed name, so a retry can neither duplicate nor lose rows.
"""

from __future__ import annotations

import logging
from typing import Any

from capbuild.errors import MissingExtraError
from capbuild.executors.base import Executor, OnDone
from capbuild.filters.base import FilterContext
from capbuild.partitions import PartitionTask, Reports, Segment, SegmentWorker, merge_reports

# How often Ray may restart a dead actor, and retry the partition it was filtering.
RESTARTS = 4


class RayExecutor(Executor):
    """Connects to the Ray cluster at `address`, or starts a local Ray instance (stopped on close)."""

    def __init__(self, address: str | None = None, workers: int = 0) -> None:
        try:
            import ray
        except ImportError as err:
            raise MissingExtraError("Ray", "scale", "--executor ray") from err
        self.ray = ray
        self.workers = workers
        self.owned = not ray.is_initialized()
        if self.owned:
            quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(num_cpus=workers or None, include_dashboard=False, **quiet)

    def map(
        self,
        segment: Segment,
        tasks: list[PartitionTask],
        specs: list[str],
        context: FilterContext,
        score_columns: list[str],
        on_done: OnDone,
    ) -> Reports:
        if not tasks:
            return {}
        ray = self.ray
        gpus = int(ray.cluster_resources().get("GPU", 0)) if segment.uses_gpu else 0
        cpus = int(ray.cluster_resources().get("CPU", 0))
        # A GPU filter on a cluster without GPUs runs on CPU actors, as it would in process.
        size = max(1, min(self.workers or gpus or cpus, gpus or cpus, len(tasks)))
        actors = [self._actor(segment, specs, context, score_columns, gpu=gpus > 0) for _ in range(size)]
        waiting = list(reversed(tasks))
        running: dict[Any, Any] = {}
        try:
            for actor in actors:
                if waiting:
                    running[actor.process.remote(waiting.pop())] = actor
            while running:
                [ready], _ = ray.wait(list(running), num_returns=1)
                actor = running.pop(ready)
                try:
                    index, counts = ray.get(ready)
                except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as err:
                    raise RuntimeError(
                        f"a Ray worker failed on the filters {segment.label!r} ({type(err).__name__}: {err}); "
                        "finished partitions are kept: re-run the same command to resume"
                    ) from err
                on_done(index, counts)
                if waiting:
                    running[actor.process.remote(waiting.pop())] = actor
            return merge_reports(ray.get([actor.reports.remote() for actor in actors]))
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)

    def _actor(
        self, segment: Segment, specs: list[str], context: FilterContext, score_columns: list[str], gpu: bool
    ) -> Any:
        worker = self.ray.remote(SegmentWorker).options(
            num_cpus=0 if gpu else 1,
            num_gpus=1 if gpu else 0,
            max_restarts=RESTARTS,
            max_task_retries=RESTARTS,
        )
        return worker.remote(specs, context, (segment.start, segment.stop, segment.modules), score_columns)

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
