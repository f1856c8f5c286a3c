"""One way into Ray for every stage that uses it: join the cluster at an address, or start a local
instance that is stopped again on close."""

from __future__ import annotations

import logging
from typing import Any

from capbuild.errors import MissingExtraError


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

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()
