"""CTranslate2 decoding: sorted by length, batched by tokens, on CUDA (every given GPU) or CPU int8,
within the model's position limits; a batch the model raises on is retried source by source."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from capbuild.cores import usable_cores
from capbuild.errors import ConfigError
from capbuild.translate.model import ModelLimits

LENGTH_BUCKET = 8


@dataclass(frozen=True)
class DecodeOptions:
    """Options that change the translations (they are part of the cache key)."""

    beam_size: int = 1
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    length_ratio: float = 2.0  # max_decoding_length = ratio * source length (rounded up to 8) + margin
    length_margin: int = 10
    max_length: int = 512

    def max_decoding_length(self, source_tokens: int) -> int:
        """The bound for a source of this length; batches never mix bounds, so a translation does
        not depend on which other sources shared its batch."""
        bucket = -(-source_tokens // LENGTH_BUCKET) * LENGTH_BUCKET
        return min(self.max_length, int(self.length_ratio * bucket) + self.length_margin)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Retried decoding for outputs that loop: block repeated trigrams and penalise repeats.
LOOP_RETRY = {"no_repeat_ngram_size": 3, "repetition_penalty": 1.2}


@dataclass(frozen=True)
class RuntimeOptions:
    """Where and how fast to decode (they never change a translation's cache key)."""

    devices: str = "auto"  # "auto" (all GPUs, else CPU), "cpu", or GPU indices "0,1"
    compute_type: str | None = None  # default: int8_float16 on CUDA, int8 on CPU
    batch_tokens: int | None = None  # default: 8192 on CUDA, 2048 on CPU
    cpu_threads: int | None = None  # default: every core this process may use


def cpu_thread_split(cores: int) -> tuple[int, int]:
    """(inter_threads, intra_threads): up to 4 threads per batch, as many batches in parallel as fit."""
    intra = max(1, min(cores, 4))
    return max(1, cores // intra), intra


def cuda_devices(devices: str) -> list[int]:
    """The GPU indices to use: [] means CPU."""
    import ctranslate2

    available = ctranslate2.get_cuda_device_count()
    if devices == "cpu":
        return []
    if devices == "auto":
        return list(range(available))
    try:
        wanted = [int(d) for d in devices.split(",") if d.strip()]
    except ValueError as err:
        raise ConfigError(f"--mt-devices takes 'auto', 'cpu' or GPU indices such as 0,1 (got {devices!r})") from err
    missing = [d for d in wanted if d >= available]
    if missing:
        raise ConfigError(f"--mt-devices {devices}: CUDA sees {available} GPU(s); use --mt-devices cpu to run on CPU")
    return wanted


@dataclass(frozen=True)
class Failed:
    """A source the model raised on, even alone in its batch: the error, as text."""

    message: str


class Ct2Engine:
    """A ctranslate2.Translator plus the batching around it; counts sentences sent to the model.

    `limits` are the model's position limits: every decoding bound is clamped to the target limit
    (CTranslate2 counts a target prefix within `max_decoding_length`, and a bound of exactly the
    table's size fits), and the caller keeps sources within the source limit."""

    def __init__(self, model_dir: Path, runtime: RuntimeOptions, limits: ModelLimits | None = None) -> None:
        import ctranslate2

        self.limits = limits or ModelLimits()
        gpus = cuda_devices(runtime.devices)
        if gpus:
            self.device = f"cuda:{','.join(map(str, gpus))}"
            self.compute_type = runtime.compute_type or "int8_float16"
            self.translator = ctranslate2.Translator(
                str(model_dir), device="cuda", device_index=gpus, compute_type=self.compute_type
            )
            self.replicas = len(gpus)
            self.batch_tokens = runtime.batch_tokens or 8192
        else:
            inter, intra = cpu_thread_split(runtime.cpu_threads or usable_cores())
            self.device = f"cpu ({inter}x{intra} threads)"
            self.compute_type = runtime.compute_type or "int8"
            self.translator = ctranslate2.Translator(
                str(model_dir), device="cpu", compute_type=self.compute_type, inter_threads=inter, intra_threads=intra
            )
            self.replicas = inter
            self.batch_tokens = runtime.batch_tokens or 2048
        self.sentences = 0

    def bound(self, source_tokens: int, decode: DecodeOptions) -> int:
        """The decoding bound for a source of this many tokens, within the model's target limit."""
        bound = decode.max_decoding_length(source_tokens)
        return min(bound, self.limits.target) if self.limits.target else bound

    def translate(
        self,
        sources: list[list[str]],
        target_prefix: list[str] | None,
        decode: DecodeOptions,
        on_batch: Callable[[int], None] | None = None,
        **overrides: Any,
    ) -> list[list[str] | Failed]:
        """Target tokens for every source, in input order (the prefix, if any, left on), or Failed
        for a source the model raised on: a batch that raises is retried source by source."""
        results: list[list[str] | Failed] = [[] for _ in sources]
        pending: deque[tuple[list[int], list[Any], dict[str, Any]]] = deque()
        lengths = [len(s) for s in sources]
        bounds = [self.bound(n, decode) for n in lengths]
        for batch in token_batches(lengths, self.batch_tokens, bounds):
            options = {
                "target_prefix": [target_prefix] * len(batch) if target_prefix else None,
                "beam_size": decode.beam_size,
                "repetition_penalty": overrides.get("repetition_penalty", decode.repetition_penalty),
                "no_repeat_ngram_size": overrides.get("no_repeat_ngram_size", decode.no_repeat_ngram_size),
                "max_decoding_length": bounds[batch[0]],  # a batch never mixes bounds
            }
            try:
                futures = self.translator.translate_batch([sources[i] for i in batch], asynchronous=True, **options)
            except Exception:  # whatever the model raises, its sources are retried one by one
                self._one_by_one(batch, sources, options, results)
                self._done(len(batch), on_batch)
                continue
            pending.append((batch, futures, options))
            # Keep every replica busy, with one batch queued behind each.
            if len(pending) >= 2 * self.replicas:
                self._collect(pending.popleft(), sources, results, on_batch)
        while pending:
            self._collect(pending.popleft(), sources, results, on_batch)
        return results

    def _collect(
        self,
        item: tuple[list[int], list[Any], dict[str, Any]],
        sources: list[list[str]],
        results: list[list[str] | Failed],
        on_batch: Callable[[int], None] | None,
    ) -> None:
        batch, futures, options = item
        failed: list[int] = []
        for index, future in zip(batch, futures, strict=True):
            try:
                results[index] = future.result().hypotheses[0]
            except Exception:  # retried alone below
                failed.append(index)
        if failed:
            self._one_by_one(failed, sources, options, results)
        self._done(len(batch), on_batch)

    def _one_by_one(
        self, indices: list[int], sources: list[list[str]], options: dict[str, Any], results: list[list[str] | Failed]
    ) -> None:
        """Each source alone, synchronously: one that still raises gets Failed with the error."""
        prefix = options["target_prefix"]
        for index in indices:
            alone = {**options, "target_prefix": prefix[:1] if prefix else None}
            try:
                results[index] = self.translator.translate_batch([sources[index]], **alone)[0].hypotheses[0]
            except Exception as err:  # the caption is rejected with this message
                results[index] = Failed(f"{type(err).__name__}: {err}")

    def _done(self, sentences: int, on_batch: Callable[[int], None] | None) -> None:
        self.sentences += sentences
        if on_batch:
            on_batch(sentences)


def token_batches(lengths: list[int], batch_tokens: int, groups: list[int] | None = None) -> list[list[int]]:
    """Indices sorted by length, cut into batches whose padded size (rows x longest) stays within
    `batch_tokens` (a longer single source gets a batch of its own) and, when `groups` is given,
    whose members share one group value."""
    groups = groups or [0] * len(lengths)
    order = sorted(range(len(lengths)), key=lambda i: (groups[i], lengths[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        # Sorted ascending, so this source is the longest of the batch so far.
        full = (len(current) + 1) * lengths[index] > batch_tokens
        if current and (full or groups[current[0]] != groups[index]):
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches
