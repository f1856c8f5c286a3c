"""One way into Ray for every stage that uses it: join the cluster at an address, or start a local
instance that is stopped again on close."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from capbuild.errors import MissingExtraError

Task = TypeVar("Task")
# How often Ray may restart a dead actor, and retry the task it was running.
RESTARTS = 4


class RaySession:
    """Ray, initialised: joins `address`, or starts a local instance with `cpus` CPUs (0: every CPU).
    A Ray already initialised in this process (by the caller) is used as it is and left running."""

    def __init__(self, address: str | None = None, cpus: int = 0, needed_for: str = "--executor ray") -> None:
        try:
            import ray
        except ImportError as err:
            raise MissingExtraError("ray", "scale", needed_for) from err
        self.ray = ray
        self.owned = not ray.is_initialized()
        if self.owned:
            quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
            if address:
                ray.init(address=address, **quiet)
            else:
                ray.init(num_cpus=cpus or None, include_dashboard=False, **quiet)

    def resources(self) -> tuple[int, int]:
        """(CPUs, GPUs) of the whole cluster."""
        total = self.ray.cluster_resources()
        return int(total.get("CPU", 0)), int(total.get("GPU", 0))

    def run_on_actors(
        self,
        actors: list[Any],
        tasks: list[Task],
        submit: Callable[[Any, Task], Any],
        on_done: Callable[[Task, Any], None],
        failure: Callable[[Task], str],
    ) -> None:
        """Hand the tasks out in order, one at a time, to whichever actor is free: `submit(actor, task)`
        starts one (returns its object ref), `on_done(task, result)` takes each result as it comes. A
        task whose actor died past its restarts raises RuntimeError(`failure(task)` and the cause)."""
        ray = self.ray
        waiting = list(reversed(tasks))
        running: dict[Any, tuple[Any, Task]] = {}

        def hand_out(actor: Any) -> None:
            if waiting:
                task = waiting.pop()
                running[submit(actor, task)] = (actor, task)

        for actor in actors:
            hand_out(actor)
        while running:
            [ready], _ = ray.wait(list(running), num_returns=1)
            actor, task = running.pop(ready)
            try:
                result = ray.get(ready)
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as err:
                raise RuntimeError(f"{failure(task)} ({type(err).__name__}: {err})") from err
            on_done(task, result)
            hand_out(actor)

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
