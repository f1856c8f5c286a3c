"""The Executor interface and the local (in-process) executor."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from capbuild.errors import ConfigError
from capbuild.filters.base import FilterContext
from capbuild.filters.chain import FilterChain
from capbuild.partitions import Counts, PartitionTask, Reports, Segment, filter_reports, run_partition

EXECUTORS = ("local", "ray")
OnDone = Callable[[int, Counts], None]


@dataclass(frozen=True)
class ExecutorOptions:
    """Where stateless filter segments run. Operational: the table is the same on every executor."""

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
    def map(
        self,
        segment: Segment,
        tasks: list[PartitionTask],
        specs: list[str],
        context: FilterContext,
        score_columns: list[str],
        on_done: OnDone,
    ) -> Reports:
        """Filter every task's partition with the segment (`make_filters(specs, context)[start:stop]`);
        call on_done(index, counts) per partition; return the segment's filter reports."""

    @abstractmethod
    def close(self) -> None:
        """Release what the executor holds (workers, a Ray instance it started)."""


class LocalExecutor(Executor):
    """Runs partitions in order in this process, with the build's own filter objects."""

    def map(
        self,
        segment: Segment,
        tasks: list[PartitionTask],
        specs: list[str],
        context: FilterContext,
        score_columns: list[str],
        on_done: OnDone,
    ) -> Reports:
        chain = FilterChain(list(segment.filters), score_columns)
        for task in tasks:
            on_done(task.index, run_partition(chain, task))
        return filter_reports(segment.filters)

    def close(self) -> None:
        """Nothing to release: the filters belong to the build."""


@contextmanager
def open_executor(options: ExecutorOptions) -> Iterator[Executor]:
    """The executor the options name, closed on exit."""
    if options.name == "ray":
        from capbuild.executors.ray_actors import RayExecutor

        executor: Executor = RayExecutor(address=options.address, workers=options.workers)
    else:
        executor = LocalExecutor()
    try:
        yield executor
    finally:
        executor.close()
