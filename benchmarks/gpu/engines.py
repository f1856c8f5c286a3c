"""The translation engines the translation part compares, each loaded once and then called on lists
of captions: `run(texts) -> Counted` (sentences, target tokens decoded, outputs that ended before
the output bound).

  capbuild  capbuild's translation stage through its public API: sorted by length, batched by tokens
  ct2       CTranslate2 as its documentation shows it: sentencepiece, translate_batch on fixed-size
            batches in input order
  hf        transformers MarianMTModel.generate, greedy, fixed-size batches in input order
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CAPBUILD_SRC, CAPBUILD_TGT = "en", "it"


@dataclass
class Counted:
    sentences: int = 0
    target_tokens: int = 0
    early: int = 0  # outputs that ended (EOS) before the bound

    def add(self, other: Counted) -> None:
        self.sentences += other.sentences
        self.target_tokens += other.target_tokens
        self.early += other.early


Runner = Callable[[list[str]], Counted]


def capbuild_stage(model: Path, device: str, compute_type: str, bound: int, cache: Path) -> Runner:
    """capbuild's translation stage (the one place this suite calls it: adapt here when its API moves).

    Every output is bounded at `bound` tokens, as for the other engines; loop retries are off because
    random weights make every output loop. The disk cache is a fresh folder: writing it is part of
    the stage's cost, and no caption repeats, so it never answers."""
    from capbuild.translate.engine import DecodeOptions, RuntimeOptions
    from capbuild.translate.translator import Translator

    decode = DecodeOptions(length_ratio=0, length_margin=bound, max_length=bound)
    cpu_threads = None if device == "cuda" else 1  # the CPU smoke run stays on one core
    runtime = RuntimeOptions(
        devices="0" if device == "cuda" else "cpu", compute_type=compute_type, cpu_threads=cpu_threads
    )
    mt = Translator(model, cache_dir=cache, decode=decode, runtime=runtime, retry_loops=False, progress=False)
    engine = mt.engine  # loaded now, so that loading is not timed
    decoded = Counted()
    translate_tokens = engine.translate

    def counting(*args: object, **kwargs: object) -> list[list[str]]:
        tokens = translate_tokens(*args, **kwargs)
        decoded.add(Counted(0, sum(len(t) for t in tokens), sum(len(t) < bound for t in tokens)))
        return tokens

    engine.translate = counting  # counts what the engine decodes; the stage itself is untouched

    def run(texts: list[str]) -> Counted:
        tokens, early = decoded.target_tokens, decoded.early
        mt.translate(texts, CAPBUILD_SRC, CAPBUILD_TGT)
        return Counted(len(texts), decoded.target_tokens - tokens, decoded.early - early)

    return run


def ct2_unsorted(model: Path, device: str, compute_type: str, bound: int, batch: int) -> Runner:
    import ctranslate2
    import sentencepiece as spm

    source = spm.SentencePieceProcessor(model_file=str(model / "source.spm"))
    target = spm.SentencePieceProcessor(model_file=str(model / "target.spm"))
    threads = {} if device == "cuda" else {"intra_threads": 1}  # the CPU smoke run stays on one core
    translator = ctranslate2.Translator(str(model), device=device, compute_type=compute_type, **threads)

    def run(texts: list[str]) -> Counted:
        counted = Counted()
        for start in range(0, len(texts), batch):
            tokens = [[*source.encode(t, out_type=str), "</s>"] for t in texts[start : start + batch]]
            results = translator.translate_batch(tokens, beam_size=1, max_decoding_length=bound)
            hypotheses = [r.hypotheses[0] for r in results]
            target.decode(hypotheses)
            counted.add(Counted(len(tokens), sum(map(len, hypotheses)), sum(len(h) < bound for h in hypotheses)))
        return counted

    return run


def hf_generate(model: Path, device: str, bound: int, batch: int) -> Runner:
    import torch
    from transformers import MarianMTModel, MarianTokenizer

    if device == "cpu":
        torch.set_num_threads(1)  # the CPU smoke run stays on one core
    tokenizer = MarianTokenizer.from_pretrained(model)
    dtype = torch.float16 if device == "cuda" else torch.float32
    net = MarianMTModel.from_pretrained(model).to(device=device, dtype=dtype).eval()
    eos, pad = net.config.eos_token_id, net.config.pad_token_id

    def run(texts: list[str]) -> Counted:
        counted = Counted()
        with torch.inference_mode():
            for start in range(0, len(texts), batch):
                inputs = tokenizer(texts[start : start + batch], return_tensors="pt", padding=True, truncation=True)
                generated = net.generate(**inputs.to(device), num_beams=1, do_sample=False, max_new_tokens=bound)
                body = generated[:, 1:]  # after the decoder start token
                real = ((body != eos) & (body != pad)).sum(dim=1)
                tokenizer.batch_decode(generated, skip_special_tokens=True)
                # generate forces EOS at the last position: an output that ran to the bound has bound-1 tokens
                counted.add(Counted(len(real), int(real.sum()), int((real < bound - 1).sum())))
        return counted

    return run
