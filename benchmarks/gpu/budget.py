"""Time budgets and processes bounded by them: a part or a measurement that outruns its time is
killed with everything it started, and whoever started it carries on."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


class Budget:
    """Seconds left until a deadline."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True)
class Finished:
    """How a bounded process ended: its exit status, or killed at its time limit."""

    returncode: int | None
    timed_out: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        if self.timed_out:
            return f"stopped at its time limit after {self.seconds:.0f} s"
        if self.returncode is not None and self.returncode < 0:
            return f"killed by signal {signal.Signals(-self.returncode).name} after {self.seconds:.0f} s"
        return f"exited with status {self.returncode} after {self.seconds:.0f} s"


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child before exec: be killed when the process that started it dies, so that a part
    killed at its limit takes its measurement processes with it (they run in their own groups)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_bounded(
    argv: Sequence[str], seconds: float, env: Mapping[str, str] | None = None, log: Path | None = None
) -> Finished:
    """Run argv for at most `seconds`; on time-out kill its whole process group (loader workers too).
    Output goes to `log` (appended) or, when None, to this process's own output."""
    started = time.monotonic()
    sink = log.open("ab") if log is not None else None
    try:
        process = subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            stdout=sink,
            stderr=sink,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            returncode: int | None = process.wait(timeout=max(1.0, seconds))
            timed_out = False
        except subprocess.TimeoutExpired:
            returncode, timed_out = None, True
        finally:
            # The group may outlive the leader (workers, an engine's threads): end all of it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    finally:
        if sink is not None:
            sink.close()
    return Finished(returncode, timed_out, time.monotonic() - started)
