"""The Executor interface and the local (in-process) executor."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from capbuild.errors import ConfigError
from capbuild.stages.text.partitions import Counts, PartitionTask, Reports
from capbuild.stages.text.segments import PlanSegment, SegmentWorker

EXECUTORS = ("local", "ray")
OnDone = Callable[[int, Counts], None]


@dataclass(frozen=True)
class ExecutorOptions:
    """Where stateless segments run. Operational: the table is the same on every executor."""

    name: str = "local"
    address: str | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        if self.name not in EXECUTORS:
            raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)} (got {self.name!r})")
        if self.workers < 0:
            raise ConfigError(f"--ray-workers must be 0 (one per CPU, or per GPU) or more (got {self.workers})")


class Executor(ABC):
    """Runs the partitions of one stateless segment, in any order, and reports each as it is done."""

    @abstractmethod
    def map(self, segment: PlanSegment, tasks: list[PartitionTask], on_done: OnDone) -> Reports:
        """Run every task's partition through the segment's steps (built from the plan it carries);
        call on_done(index, counts) per partition; return the segment's step reports."""

    @abstractmethod
    def close(self) -> None:
        """Release what the executor holds (workers, a Ray instance it started)."""


class LocalExecutor(Executor):
    """Runs partitions in order in this process."""

    def map(self, segment: PlanSegment, tasks: list[PartitionTask], on_done: OnDone) -> Reports:
        worker = SegmentWorker(segment)
        for task in tasks:
            on_done(*worker.process(task))
        return worker.reports()

    def close(self) -> None:
        """Nothing to release: the steps were built for one map."""


@contextmanager
def open_executor(options: ExecutorOptions) -> Iterator[Executor]:
    """The executor the options name, closed on exit."""
    if options.name == "ray":
        from capbuild.stages.text.executors.ray import RayExecutor

        executor: Executor = RayExecutor(address=options.address, workers=options.workers)
    else:
        executor = LocalExecutor()
    try:
        yield executor
    finally:
        executor.close()
