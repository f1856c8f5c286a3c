"""Translation throughput: capbuild's stage against transformers `generate` and plain CTranslate2.

A random-weight MarianMT of OPUS-MT size (d_model 512, 6+6 layers, 8 heads, FFN 2048, 32k vocabulary)
translates the same CC-style captions three ways, all with the same fixed output bound:

  capbuild     capbuild.translate.Translator: sorted by length, batched by tokens, CTranslate2 int8
  ct2-unsorted ctranslate2.Translator int8, translate_batch on fixed-size batches of 32 in input order
  hf-generate  transformers MarianMTModel.generate, greedy, batches of 32, float32 (torch CPU)

Tokenizing and detokenizing count in every figure. Random weights make every model loop, so the
stage's loop retry is off (a real model rarely loops). Run:

    python benchmarks/translate_cpu.py --captions 5000 --hf-subset 640
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.translate_models import build_marian  # noqa: E402

REALDATA = Path(os.environ.get("CAPBUILD_REALDATA", ROOT.parent / "shared" / "realdata"))
CC_SAMPLE = REALDATA / "cc3m" / "Validation_GCC-1.1.0-Validation.first100.tsv"


def cc_style_captions(count: int, sample: Path, seed: int = 0) -> list[str]:
    """`count` distinct captions made by joining the start of one CC3M caption to the end of another
    (the real sample holds only 100 lines, and the stage would dedupe repeats)."""
    lines = [line.split("\t")[0].split() for line in sample.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    captions: dict[str, None] = {}
    while len(captions) < count:
        a, b = rng.choice(lines), rng.choice(lines)
        text = " ".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])
        captions.setdefault(text, None)
    return list(captions)


class Capbuild:
    def __init__(self, model: Path, max_length: int, cache: Path) -> None:
        from capbuild.translate import DecodeOptions, Translator

        decode = DecodeOptions(length_ratio=0, length_margin=max_length, max_length=max_length)
        self.mt = Translator(model, cache_dir=cache, decode=decode, retry_loops=False, progress=False)
        self.mt.engine  # noqa: B018  (load the model before timing, as for the others)
        self.early = 0

    def __call__(self, captions: list[str]) -> list[str]:
        return self.mt.translate(captions, "en", "it")


class Ct2Unsorted:
    def __init__(self, model: Path, max_length: int) -> None:
        import ctranslate2

        from capbuild.translate.engine import cpu_thread_split
        from capbuild.translate.tokenizer import ModelTokenizer

        inter, intra = cpu_thread_split(os.cpu_count() or 1)
        self.translator = ctranslate2.Translator(
            str(model), device="cpu", compute_type="int8", inter_threads=inter, intra_threads=intra
        )
        self.tokenizer = ModelTokenizer(model, "marian")
        self.max_length = max_length
        self.early = 0  # outputs that ended (EOS) before the bound

    def __call__(self, captions: list[str]) -> list[str]:
        out: list[str] = []
        for start in range(0, len(captions), 32):
            tokens = self.tokenizer.encode(captions[start : start + 32], "en")
            results = self.translator.translate_batch(tokens, beam_size=1, max_decoding_length=self.max_length)
            out += [self.tokenizer.decode(r.hypotheses[0], None) for r in results]
            self.early += sum(len(r.hypotheses[0]) < self.max_length for r in results)
        return out


class HfGenerate:
    def __init__(self, model: Path, max_length: int) -> None:
        from transformers import MarianMTModel, MarianTokenizer

        self.tokenizer = MarianTokenizer.from_pretrained(model)
        self.net = MarianMTModel.from_pretrained(model).eval()
        self.max_length = max_length
        self.early = 0

    def __call__(self, captions: list[str]) -> list[str]:
        import torch

        out: list[str] = []
        with torch.inference_mode():
            for start in range(0, len(captions), 32):
                batch = self.tokenizer(captions[start : start + 32], return_tensors="pt", padding=True)
                generated = self.net.generate(**batch, num_beams=1, do_sample=False, max_new_tokens=self.max_length)
                out += self.tokenizer.batch_decode(generated, skip_special_tokens=True)
                ended = (generated[:, 1:-1] == self.net.generation_config.eos_token_id).any(dim=1)
                self.early += int(ended.sum())
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=5000)
    parser.add_argument("--hf-subset", type=int, default=640, help="captions for the slow transformers baseline")
    parser.add_argument("--max-length", type=int, default=48, help="output bound (tokens) for all three")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds of the three runs")
    parser.add_argument("--sample", type=Path, default=CC_SAMPLE)
    args = parser.parse_args()

    from capbuild.translate.convert import convert_model

    captions = cc_style_captions(args.captions, args.sample)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        hf = build_marian(work / "hf", d_model=512, layers=6, vocab_size=32000, ffn=2048)
        ct2 = work / "ct2"
        convert_model(str(hf), ct2, quantization="int8")
        runs = {
            "capbuild": Capbuild(ct2, args.max_length, work / "cache"),
            "ct2-unsorted": Ct2Unsorted(ct2, args.max_length),
            "hf-generate": HfGenerate(hf, args.max_length),
        }
        # Rounds interleave the three, so that load from other processes falls on all of them alike.
        seconds = dict.fromkeys(runs, 0.0)
        counts = dict.fromkeys(runs, 0)
        outputs: dict[str, list[str]] = {name: [] for name in runs}
        hf_per_round = -(-args.hf_subset // args.rounds)
        for chunk in (captions[i :: args.rounds] for i in range(args.rounds)):
            for name, run in runs.items():
                part = chunk[:hf_per_round] if name == "hf-generate" else chunk
                started = time.perf_counter()
                outputs[name] += run(part)
                seconds[name] += time.perf_counter() - started
                counts[name] += len(part)
        started = time.perf_counter()
        runs["capbuild"](captions)
        seconds["capbuild, second run (cache)"] = time.perf_counter() - started
        counts["capbuild, second run (cache)"] = len(captions)

    same = sum(a == b for a, b in zip(outputs["capbuild"], outputs["ct2-unsorted"], strict=True)) / len(captions)
    rates = {name: counts[name] / seconds[name] for name in seconds}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"captions: {len(captions)} CC-style in {args.rounds} rounds, output bound {args.max_length} tokens, greedy")
    print(f"capbuild output equal to ct2-unsorted: {same:.1%}; outputs ending before the bound: "
          f"ct2-unsorted {runs['ct2-unsorted'].early}/{counts['ct2-unsorted']}, "
          f"hf-generate {runs['hf-generate'].early}/{counts['hf-generate']}\n")  # fmt: skip
    print("| run | captions | seconds | sentences/s | vs hf-generate |")
    print("|---|---:|---:|---:|---:|")
    for name in seconds:
        print(
            f"| {name} | {counts[name]:,} | {seconds[name]:.2f} | {rates[name]:,.1f} | "
            f"{rates[name] / rates['hf-generate']:,.1f}x |"
        )
    print("\n" + json.dumps({k: {"captions": counts[k], "seconds": round(v, 2)} for k, v in seconds.items()}))


if __name__ == "__main__":
    main()
