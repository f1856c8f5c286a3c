"""What the figures were measured on (GPU, driver, package versions) and the GPU's utilisation and
memory sampled through NVML (nvidia-ml-py's `pynvml`) while a measurement runs."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import threading
import time
from typing import Any

PACKAGES = ("torch", "ctranslate2", "transformers", "tokenizers", "webdataset", "numpy", "capbuild")


def _nvml() -> Any | None:
    """pynvml, initialised, or None where there is no NVML (no NVIDIA driver, or no nvidia-ml-py)."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # ImportError, or NVMLError where the driver is absent
        return None
    return pynvml


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def environment() -> dict[str, Any]:
    """GPU name, driver and CUDA versions, package versions, CPU count."""
    facts: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "packages": {name: _version(name) for name in PACKAGES},
    }
    nvml = _nvml()
    if nvml is not None and nvml.nvmlDeviceGetCount() > 0:
        handle = nvml.nvmlDeviceGetHandleByIndex(0)
        cuda = nvml.nvmlSystemGetCudaDriverVersion()
        facts.update(
            gpu=_text(nvml.nvmlDeviceGetName(handle)),
            gpu_count=nvml.nvmlDeviceGetCount(),
            gpu_memory_mib=nvml.nvmlDeviceGetMemoryInfo(handle).total // 2**20,
            driver=_text(nvml.nvmlSystemGetDriverVersion()),
            driver_cuda=f"{cuda // 1000}.{cuda % 1000 // 10}",
        )
    else:
        facts.update(gpu=None, driver=None, note="no NVIDIA GPU seen through NVML: CPU run")
    try:
        import torch

        facts["torch_cuda"] = torch.version.cuda
        facts["torch_sees_gpu"] = torch.cuda.is_available()
    except ImportError:
        pass
    return facts


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class GpuMonitor:
    """Samples GPU 0's utilisation and memory in a thread. Figures count only samples after `mark()`
    (or all, if never marked); memory is reported as the peak above what was in use at start.
    Without NVML every figure is None."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.nvml = _nvml()
        self.handle = self.nvml.nvmlDeviceGetHandleByIndex(0) if self.nvml and self.nvml.nvmlDeviceGetCount() else None
        self.samples: list[tuple[float, int, int]] = []  # (time, utilisation %, memory used bytes)
        self.marked: float | None = None
        self.baseline = self._memory() if self.handle else 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _memory(self) -> int:
        return int(self.nvml.nvmlDeviceGetMemoryInfo(self.handle).used)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            utilisation = self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu
            self.samples.append((time.monotonic(), int(utilisation), self._memory()))

    def __enter__(self) -> GpuMonitor:
        if self.handle is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def mark(self) -> None:
        """From now on: the timed part of the run (start-up left out of the utilisation)."""
        if self.marked is None:
            self.marked = time.monotonic()

    def summary(self) -> dict[str, Any]:
        if self.handle is None:
            return {"gpu_util_percent": None, "gpu_memory_peak_mib": None}
        timed = [s for s in self.samples if self.marked is None or s[0] >= self.marked]
        peak = max((s[2] for s in self.samples), default=self.baseline)
        return {
            "gpu_util_percent": round(sum(s[1] for s in timed) / len(timed), 1) if timed else None,
            "gpu_util_samples": len(timed),
            "gpu_memory_peak_mib": round((peak - self.baseline) / 2**20),
        }
