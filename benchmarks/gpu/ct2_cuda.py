"""Where CTranslate2 finds cuBLAS on the GPU machine.

The PyPI ctranslate2 wheel links the CUDA runtime statically and dlopen()s `libcublas.so.12` at its
first matrix product (benchmarks/gpu/wheels.py shows it). A machine with only CUDA 13 (the GPU
machine: torch cu130) has `libcublas.so.13` and no `.so.12`; the CUDA 12 cuBLAS wheel is 581 MB,
far past what can be carried. So the translation part tries, each in a probe process:

  system   the environment as it is (a machine with CUDA 12's cuBLAS on its library path);
  shim     a folder of links `libcublas.so.12` / `libcublasLt.so.12` -> the CUDA 13 libraries, first on
           LD_LIBRARY_PATH. The nine cuBLAS calls CTranslate2 makes (cublasCreate_v2, cublasGemmEx,
           cublasGemmStridedBatchedEx, cublasSgemm_v2, ...) keep their signatures in CUDA 13, but
           NVIDIA does not promise this: the probe checks GPU output against CPU output before any
           figure is taken, and a probe that crashes only loses itself.
"""

from __future__ import annotations

import glob
import os
import site
import subprocess
import sys
from pathlib import Path

CUBLAS = ("libcublas.so", "libcublasLt.so")


def library_dirs() -> list[str]:
    """Folders that may hold CUDA libraries: pip's nvidia-* packages, CUDA installs, ldconfig's cache."""
    roots = [*site.getsitepackages(), site.getusersitepackages(), *sys.path]
    dirs = [d for root in roots for d in glob.glob(os.path.join(root, "nvidia", "*", "lib"))]
    dirs += glob.glob("/usr/local/cuda*/lib64") + glob.glob("/usr/local/cuda*/targets/x86_64-linux/lib")
    try:
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=False).stdout
    except OSError:
        listing = ""
    dirs += [os.path.dirname(line.split("=>")[-1].strip()) for line in listing.splitlines() if "libcublas" in line]
    return list(dict.fromkeys(d for d in dirs if os.path.isdir(d)))


def find_library(name: str) -> Path | None:
    """The first `name` (e.g. libcublas.so.13) in library_dirs()."""
    for folder in library_dirs():
        path = Path(folder) / name
        if path.exists():
            return path.resolve()
    return None


def shim_environment(folder: Path, major: int = 13) -> dict[str, str] | None:
    """An environment whose LD_LIBRARY_PATH serves CUDA `major`'s cuBLAS under the CUDA 12 names,
    or None when that cuBLAS is not on this machine."""
    targets = {name: find_library(f"{name}.{major}") for name in CUBLAS}
    if not all(targets.values()):
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in targets.items():
        link = folder / f"{name}.12"
        link.unlink(missing_ok=True)
        link.symlink_to(target)
    lib_dirs = dict.fromkeys(str(t.parent) for t in targets.values() if t is not None)
    path = os.pathsep.join([str(folder), *lib_dirs, *filter(None, [os.environ.get("LD_LIBRARY_PATH")])])
    return {**os.environ, "LD_LIBRARY_PATH": path}
