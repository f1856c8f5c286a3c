"""The Ray executor: each stateless segment runs on a pool of Ray actors that hold its filters.

An actor per CPU (or, for a segment with a GPU step, one per GPU with num_gpus=1; one per CPU on a
cluster without GPUs) receives the plan segment and builds its steps, so each loads its model once.
Partitions are handed out one at a time to whichever actor is free. An actor whose process dies is
restarted by Ray and its partition retried; the partition's files are written atomically under a
fixed name, so a retry can neither duplicate nor lose rows.
"""

from __future__ import annotations

from typing import Any

from capbuild.ray_session import RESTARTS, RaySession
from capbuild.stages.text.executors.base import Executor, OnDone
from capbuild.stages.text.partitions import PartitionTask, Reports, merge_reports
from capbuild.stages.text.segments import PlanSegment, SegmentWorker


class RayExecutor(Executor):
    """Connects to the Ray cluster at `address`, or starts a local Ray instance (stopped on close)."""

    def __init__(self, address: str | None = None, workers: int = 0) -> None:
        self.session = RaySession(address, workers)
        self.ray = self.session.ray
        self.workers = workers

    def map(self, segment: PlanSegment, tasks: list[PartitionTask], on_done: OnDone) -> Reports:
        if not tasks:
            return {}
        ray = self.ray
        cpus, gpus = self.session.resources()
        gpus = gpus if segment.uses_gpu else 0
        # A GPU step on a cluster without GPUs runs on CPU actors, as it would in process.
        size = max(1, min(self.workers or gpus or cpus, gpus or cpus, len(tasks)))
        actors = [self._actor(segment, gpu=gpus > 0) for _ in range(size)]
        failure = (
            f"a Ray worker failed on the steps {segment.label!r}; finished partitions are kept: "
            "re-run the same command to resume"
        )
        try:
            self.session.run_on_actors(
                actors,
                tasks,
                submit=lambda actor, task: actor.process.remote(task),
                on_done=lambda _task, result: on_done(*result),
                failure=lambda _task: failure,
            )
            return merge_reports(ray.get([actor.reports.remote() for actor in actors]))
        finally:
            for actor in actors:
                ray.kill(actor, no_restart=True)

    def _actor(self, segment: PlanSegment, gpu: bool) -> Any:
        worker = self.ray.remote(SegmentWorker).options(
            num_cpus=0 if gpu else 1,
            num_gpus=1 if gpu else 0,
            max_restarts=RESTARTS,
            max_task_retries=RESTARTS,
        )
        return worker.remote(segment)

    def close(self) -> None:
        self.session.close()
