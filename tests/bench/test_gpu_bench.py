"""The GPU benchmark suite (benchmarks/gpu/): its CPU smoke mode end to end, so the script cannot rot
between GPU sessions, and the pieces that decide what the GPU run can do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.gpu.budget import run_bounded
from benchmarks.gpu.captions import cc_style_captions, length_spread

ROOT = Path(__file__).resolve().parents[2]


def test_captions_are_distinct_with_a_spread_of_lengths():
    captions = cc_style_captions(3000)
    assert len(set(captions)) == 3000
    spread = length_spread(captions)
    assert spread["words_p50"] < spread["words_p90"] < spread["words_max"]
    assert cc_style_captions(50) == cc_style_captions(50)


def test_a_bounded_process_is_killed_with_its_children(tmp_path):
    marker = tmp_path / "grandchild-pid"
    script = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        f"open({str(marker)!r}, 'w').write(str(p.pid)); time.sleep(60)"
    )
    finished = run_bounded([sys.executable, "-c", script], seconds=3)
    assert finished.timed_out and not finished.ok
    stat = Path(f"/proc/{int(marker.read_text())}/stat")
    for _ in range(100):  # SIGKILL is sent; give the kernel a moment to end it
        if not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] in "ZX":
            break
        time.sleep(0.1)
    else:
        pytest.fail("the grandchild outlived its killed group")


def test_cublas_shim_serves_cuda_13_under_the_cuda_12_names(tmp_path, monkeypatch):
    from benchmarks.gpu import ct2_cuda

    lib = tmp_path / "site-packages" / "nvidia" / "cu13" / "lib"
    lib.mkdir(parents=True)
    monkeypatch.setattr(ct2_cuda, "library_dirs", lambda: [str(lib)])
    (lib / "libcublas.so.13").write_bytes(b"cublas")
    assert ct2_cuda.shim_environment(tmp_path / "shim") is None  # no libcublasLt.so.13 beside it
    (lib / "libcublasLt.so.13").write_bytes(b"cublasLt")
    env = ct2_cuda.shim_environment(tmp_path / "shim")
    assert env["LD_LIBRARY_PATH"].split(os.pathsep)[:2] == [str(tmp_path / "shim"), str(lib)]
    assert (tmp_path / "shim" / "libcublas.so.12").read_bytes() == b"cublas"
    assert (tmp_path / "shim" / "libcublasLt.so.12").read_bytes() == b"cublasLt"


def test_ctranslate2_library_analysis():
    ctranslate2 = pytest.importorskip("ctranslate2", reason="needs the translate extra")
    from benchmarks.gpu.wheels import dlopened_cuda, fatbin_architectures, needed

    library = next((Path(ctranslate2.__file__).parent.parent / "ctranslate2.libs").glob("libctranslate2*.so*"))
    elf = library.read_bytes()
    assert "libc.so.6" in needed(elf)
    assert any(name.startswith("libcublas.so.") for name in dlopened_cuda(elf))
    architectures = fatbin_architectures(elf)
    assert architectures["cubin"] and architectures["ptx"]


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_tiny_run_reports_every_part(tmp_path):
    for module in ("ctranslate2", "torch", "transformers", "webdataset", "sentencepiece", "timm"):
        pytest.importorskip(module, reason="needs the translate and train extras")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHON": sys.executable}
    command = ["bash", str(ROOT / "benchmarks/gpu/run.sh"), "--tiny", "--out", str(out), "--work", str(tmp_path)]
    subprocess.run(command, env=env, check=True, timeout=1400)

    report = json.loads((out / "gpu.json").read_text())
    assert set(report["parts"]) == {"translation", "training", "embedding"}
    for part in report["parts"].values():
        assert "failed" not in part, part["failed"]
        assert part["figures"] or part["skipped"]
        assert all(reason.strip() for reason in part["skipped"].values())
    translation = report["parts"]["translation"]
    assert translation["setup"]["ct2_cuda"] == "system"  # on a CPU run CTranslate2 needs no CUDA library
    for figures in translation["figures"].values():
        assert figures["sentences"] > 0 and figures["target_tokens_per_s"] > 0
    assert "capbuild int8_float16" in translation["figures"]
    training = report["parts"]["training"]["figures"]
    assert set(training) == {"bf16", "fp32"}
    assert all(run["samples_per_s"] > 0 and run["timed_steps"] > 0 for run in training.values())
    embedding = report["parts"]["embedding"]["figures"]["embedding pass"]
    assert embedding["images"] > 0 and embedding["images_per_s"] > 0
    assert embedding["counts"]["embedded_shards"] > 0
    markdown = (out / "gpu.md").read_text()
    assert "### Translation" in markdown and "### Published figures to compare with" in markdown
