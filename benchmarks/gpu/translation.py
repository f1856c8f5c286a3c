"""Translation part: an OPUS-MT-size random Marian converted to CTranslate2 on the spot, translating
CC-style captions four ways with the same output bound:

  capbuild int8_float16   capbuild's stage (sorted by length, batched by tokens), its GPU default
  capbuild float16        the same stage in float16
  ct2 unsorted float16    CTranslate2 on fixed batches of 64 in input order
  transformers generate   MarianMTModel.generate in fp16, batches of 64 in input order

Each runs in its own process (load and a warm-up untimed, then timed chunks until the captions or
its time slice run out), so a crash or a time-out loses only that measurement, and GPU memory is
that engine's alone. Random weights never emit EOS, so every output runs to the bound: the figures
are for outputs of exactly that many tokens, and the implied CC3M time is an upper bound.

    python -m benchmarks.gpu.translation SPEC.json      (one measurement; the part starts these)
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.gpu.budget import Budget, run_bounded
from benchmarks.gpu.captions import cc_style_captions, length_spread, sample_captions
from benchmarks.gpu.ct2_cuda import shim_environment
from benchmarks.gpu.marian import OPUS_MT, TINY, build_marian
from benchmarks.gpu.record import PartRecord
from benchmarks.gpu.system import GpuMonitor

CC3M_CAPTIONS = 3_300_000


@dataclass(frozen=True)
class Sizes:
    captions: int
    warmup: int
    bound: int  # output tokens per caption, for every engine
    batch: int  # fixed batch of the unsorted baselines
    chunk: int  # captions per timed call (the time slice is checked between calls)
    hf_chunk: int
    model: dict[str, int]
    load_seconds: float  # time allowed for a measurement's start (imports, model load, warm-up)
    min_seconds: float  # a measurement with less timed time than this is skipped


FULL = Sizes(100_000, 512, 32, 64, 10_000, 1024, OPUS_MT, 20.0, 8.0)
SMOKE = Sizes(96, 8, 8, 16, 48, 32, TINY, 20.0, 1.0)

# (name, engine, compute type on a GPU, compute type on a CPU run)
VARIANTS = (
    ("capbuild int8_float16", "capbuild", "int8_float16", "int8"),
    ("capbuild float16", "capbuild", "float16", "float32"),
    ("ct2 unsorted float16", "ct2", "float16", "float32"),
    ("transformers generate fp16", "hf", "float16", "float32"),
)


def run_part(record: PartRecord, budget: Budget, work: Path, tiny: bool) -> None:
    sizes = SMOKE if tiny else FULL
    device = "cpu" if tiny else "cuda"
    started = time.monotonic()
    captions = cc_style_captions(sizes.captions + sizes.warmup)
    hf_dir, ct2_dir = _models(work, sizes)
    captions_path = work / "captions.json"
    captions_path.write_text(json.dumps(captions))
    record.setup(
        captions=sizes.captions,
        output_bound_tokens=sizes.bound,
        model=f"random MarianMT d{sizes.model['d_model']}, {sizes.model['layers']}+{sizes.model['layers']} layers, "
        f"{sizes.model['vocab_size']:,} vocabulary",
        source_pieces_mean=_mean_pieces(hf_dir, captions[:2000]),
        device=device,
        setup_seconds=round(time.monotonic() - started, 1),
        **length_spread(captions[: sizes.captions]),
    )
    spec = {**asdict(sizes), "model": str(ct2_dir), "hf_model": str(hf_dir), "captions_file": str(captions_path)}
    ct2_env = _probe(record, budget, work, spec, device)
    for index, (name, engine, gpu_type, cpu_type) in enumerate(VARIANTS):
        if engine != "hf" and ct2_env is None:
            record.skip(name, "CTranslate2 cannot run on this GPU (see setup.ct2_probe)")
            continue
        slice_seconds = budget.left() / (len(VARIANTS) - index) - 2
        timed = slice_seconds - sizes.load_seconds
        if timed < sizes.min_seconds:
            record.skip(name, f"the part's time budget was spent ({budget.left():.0f} s left)")
            continue
        result = work / f"{engine}-{index}.json"
        compute_type = gpu_type if device == "cuda" else cpu_type
        child = {**spec, "engine": engine, "device": device, "compute_type": compute_type, "seconds": timed}
        child.update(result=str(result), cache=str(work / f"cache-{index}"))
        finished = _child(work, child, slice_seconds, ct2_env if engine != "hf" else None)
        if result.is_file():
            figures = json.loads(result.read_text())
            figures["cc3m_hours"] = round(CC3M_CAPTIONS / figures["sentences_per_s"] / 3600, 2)
            record.figure(name, figures)
            if not finished.ok:
                record.note(f"{name}: {finished.describe()}; figures up to then kept")
        else:
            record.skip(name, f"its process {finished.describe()} before measuring (log: translation.log)")


def _models(work: Path, sizes: Sizes) -> tuple[Path, Path]:
    from capbuild.translate.convert import convert_model

    hf_dir = build_marian(work / "marian-hf", sample_captions(), **sizes.model)
    ct2_dir = work / "marian-ct2"
    convert_model(str(hf_dir), ct2_dir, quantization="float16", force=True)
    return hf_dir, ct2_dir


def _mean_pieces(hf_dir: Path, captions: list[str]) -> float:
    import sentencepiece as spm

    source = spm.SentencePieceProcessor(model_file=str(hf_dir / "source.spm"))
    return round(sum(len(ids) for ids in source.encode(captions)) / len(captions), 1)


def _probe(record: PartRecord, budget: Budget, work: Path, spec: dict[str, Any], device: str) -> dict | None:
    """The environment in which CTranslate2 runs on this device (see ct2_cuda.py), or None."""
    tries: list[tuple[str, dict[str, str] | None]] = [("system", dict(os.environ))]
    if device == "cuda":
        tries.append(("cublas13-shim", shim_environment(work / "cublas-shim")))
    outcomes = {}
    for name, env in tries:
        if env is None:
            outcomes[name] = {"ok": False, "error": "no CUDA 13 cuBLAS (libcublas.so.13) found on this machine"}
            continue
        result = work / f"probe-{name}.json"
        child = {**spec, "engine": "probe", "device": device, "result": str(result)}
        finished = _child(work, child, min(180.0, budget.left() / 2), env)
        outcomes[name] = json.loads(result.read_text()) if result.is_file() else {"ok": False}
        outcomes[name].setdefault("error", None if finished.ok else f"probe {finished.describe()}")
        record.setup(ct2_probe=outcomes)
        if outcomes[name]["ok"]:
            record.setup(ct2_cuda=name)
            return env
    record.setup(ct2_cuda=None)
    return None


def _child(work: Path, spec: dict[str, Any], seconds: float, env: dict[str, str] | None):
    path = work / f"spec-{spec['engine']}-{Path(spec['result']).stem}.json"
    path.write_text(json.dumps(spec))
    environment = dict(env if env is not None else os.environ)
    environment.setdefault("CUDA_CACHE_MAXSIZE", str(4 << 30))  # PTX compiled once, reused by later processes
    return run_bounded([sys.executable, "-m", "benchmarks.gpu.translation", str(path)], seconds, environment,
                       log=work / "translation.log")  # fmt: skip


# ---- in the measurement process ----


def probe(spec: dict[str, Any]) -> dict[str, Any]:
    """Can CTranslate2 decode on the device, and does it decode as the CPU does (float32, greedy)?"""
    import ctranslate2
    import sentencepiece as spm

    device = spec["device"]
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        return {"ok": False, "error": "CTranslate2 sees no CUDA device"}
    source = spm.SentencePieceProcessor(model_file=str(Path(spec["model"]) / "source.spm"))
    captions = json.loads(Path(spec["captions_file"]).read_text())[:32]
    batch = [[*source.encode(c, out_type=str), "</s>"] for c in captions]
    options = {"beam_size": 1, "max_decoding_length": spec["bound"]}
    started = time.monotonic()
    outputs = {}
    for compute_type in ("float32", "float16", "int8_float16") if device == "cuda" else ("float32",):
        translator = ctranslate2.Translator(spec["model"], device=device, compute_type=compute_type)
        outputs[compute_type] = [r.hypotheses[0] for r in translator.translate_batch(batch, **options)]
    first_load = time.monotonic() - started
    reference = ctranslate2.Translator(spec["model"], device="cpu", compute_type="float32")
    expected = [r.hypotheses[0] for r in reference.translate_batch(batch, **options)]
    agree = sum(a[:4] == b[:4] for a, b in zip(outputs["float32"], expected, strict=True)) / len(batch)
    result = {
        "ok": agree >= 0.5,
        "seconds_to_first_outputs": round(first_load, 1),
        "first_4_tokens_equal_to_cpu": agree,
        "compute_types": sorted(ctranslate2.get_supported_compute_types(device)),
    }
    if not result["ok"]:
        result["error"] = "GPU outputs differ from CPU outputs: the CUDA libraries do not compute correctly"
    return result


def load_engine(spec: dict[str, Any]):
    from benchmarks.gpu import engines

    model, device, bound = Path(spec["model"]), spec["device"], spec["bound"]
    if spec["engine"] == "capbuild":
        return engines.capbuild_stage(model, device, spec["compute_type"], bound, Path(spec["cache"]))
    if spec["engine"] == "ct2":
        return engines.ct2_unsorted(model, device, spec["compute_type"], bound, spec["batch"])
    return engines.hf_generate(Path(spec["hf_model"]), device, bound, spec["batch"])


def measure(spec: dict[str, Any]) -> None:
    """Load, warm up, then translate chunks until the captions or `seconds` run out; the figures are
    rewritten after every chunk."""
    from benchmarks.gpu.engines import Counted

    captions = json.loads(Path(spec["captions_file"]).read_text())
    timed, warmup = captions[: spec["captions"]], captions[spec["captions"] :]
    chunk = spec["hf_chunk"] if spec["engine"] == "hf" else spec["chunk"]
    result = Path(spec["result"])
    with GpuMonitor() as monitor:
        started = time.monotonic()
        run = load_engine(spec)
        run(warmup)
        load_seconds = time.monotonic() - started
        monitor.mark()
        counted, begun = Counted(), time.perf_counter()
        while counted.sentences < len(timed) and time.perf_counter() - begun < spec["seconds"]:
            counted.add(run(timed[counted.sentences : counted.sentences + chunk]))
            seconds = time.perf_counter() - begun
            figures = {
                "engine": spec["engine"],
                "compute_type": spec["compute_type"],
                "device": spec["device"],
                "batching": "sorted, token batches" if spec["engine"] == "capbuild" else f"fixed {spec['batch']}",
                "sentences": counted.sentences,
                "seconds": round(seconds, 2),
                "sentences_per_s": round(counted.sentences / seconds, 1),
                "target_tokens": counted.target_tokens,
                "target_tokens_per_s": round(counted.target_tokens / seconds, 1),
                "outputs_at_bound": round(1 - counted.early / counted.sentences, 4),
                "load_and_warmup_seconds": round(load_seconds, 1),
                "complete": counted.sentences == len(timed),
                **monitor.summary(),
                **_torch_memory(spec),
            }
            tmp = result.with_suffix(".tmp")
            tmp.write_text(json.dumps(figures, indent=2))
            os.replace(tmp, result)


def _torch_memory(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["engine"] != "hf" or spec["device"] != "cuda":
        return {}
    import torch

    return {"torch_max_allocated_mib": round(torch.cuda.max_memory_allocated() / 2**20)}


def main(path: str) -> None:
    spec = json.loads(Path(path).read_text())
    if spec["engine"] == "probe":
        try:
            result = probe(spec)
        except Exception as error:  # the probe's answer is the error itself
            result = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        Path(spec["result"]).write_text(json.dumps(result, indent=2))
        return
    measure(spec)


if __name__ == "__main__":
    main(sys.argv[1])
