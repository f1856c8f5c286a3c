"""Segments of a plan: a maximal run of stateless steps (any worker may take any partition) or one
stateful step (one process, partitions in order). A segment carries the whole plan, so a worker
builds its steps where it runs (loading their models there) and writes rows of the plan's schema."""

from __future__ import annotations

import os
from dataclasses import dataclass

from capbuild.filters.chain import FilterChain
from capbuild.stages.text.partitions import Counts, PartitionTask, Reports, filter_reports, run_partition
from capbuild.stages.text.plan import Plan
from capbuild.stages.text.steps import Step


@dataclass(frozen=True)
class PlanSegment:
    """Steps start..stop of `plan`, which run together on one worker."""

    plan: Plan
    index: int
    start: int
    stop: int

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.plan.steps[self.start : self.stop]

    @property
    def stateful(self) -> bool:
        return any(s.stateful for s in self.steps)

    @property
    def uses_gpu(self) -> bool:
        return any(s.uses_gpu for s in self.steps)

    @property
    def label(self) -> str:
        return ", ".join(self.labels)

    @property
    def labels(self) -> list[str]:
        return self.plan.labels[self.start : self.stop]

    def chain(self) -> FilterChain:
        """The segment's runnable steps (models load on first use), writing the plan's schema."""
        return FilterChain([s.build() for s in self.steps], self.plan.scores, self.labels)


def split_segments(plan: Plan) -> list[PlanSegment]:
    """Cut the plan into maximal runs of stateless steps and single stateful steps."""
    groups: list[list[int]] = []
    for i, step in enumerate(plan.steps):
        if step.stateful or not groups or plan.steps[groups[-1][-1]].stateful:
            groups.append([i])
        else:
            groups[-1].append(i)
    return [PlanSegment(plan, n, g[0], g[-1] + 1) for n, g in enumerate(groups)]


class SegmentWorker:
    """Holds one segment's runnable steps, built where it runs (a Ray actor, or in process), and
    runs partitions through them."""

    def __init__(self, segment: PlanSegment) -> None:
        self.chain = segment.chain()

    def process(self, task: PartitionTask) -> tuple[int, Counts]:
        return task.index, run_partition(self.chain, task)

    def reports(self) -> Reports:
        return filter_reports(self.chain)

    def pid(self) -> int:
        return os.getpid()
