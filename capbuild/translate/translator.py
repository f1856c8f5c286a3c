"""Translate a list of strings: normalise, dedupe, look up the cache, split long inputs, decode
the rest with CTranslate2 within the model's limits, retry loops, store. The Python API of the
translation stage: `translate` gives strings, `translate_outcomes` also says why a text got none."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn
from rich.text import Text

from capbuild.translate.cache import TranslationCache, cache_key, default_cache_dir, normalise
from capbuild.translate.degenerate import is_loop
from capbuild.translate.engine import LOOP_RETRY, Ct2Engine, DecodeOptions, Failed, RuntimeOptions
from capbuild.translate.model import ModelInfo, ModelLimits, read_model_info, read_model_limits
from capbuild.translate.segment import SPLIT_ABOVE_TOKENS, split_sentences
from capbuild.translate.tokenizer import ModelTokenizer

CHUNK_TEXTS = 4096  # texts decoded (and committed to the cache) at a time
TOO_LONG = "mt_too_long"  # a sentence of the text has more subwords than the model has positions
ERROR = "mt_error"  # the model raised on the text, even alone in its batch


@dataclass(frozen=True)
class Outcome:
    """One text's translation, or why it has none: `reason` TOO_LONG or ERROR, `detail` the subword
    counts or the model's error message."""

    text: str
    reason: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        return not self.reason


class Translator:
    """Machine translation with a converted CTranslate2 model.

    >>> mt = Translator("opus-mt-en-it-ct2/")
    >>> mt.translate(["A dog runs on the beach."], src_lang="en", tgt_lang="it")

    Every text gets exactly one translation, in order. Texts equal after normalisation (NFC,
    whitespace) are translated once; translations are cached on disk (`cache_dir`, None for the
    default user cache folder, False for none), so re-runs and repeated captions cost nothing.
    A text the model cannot take (a sentence longer than its position table, or one it raises on)
    gets '' from `translate`; `translate_outcomes` says which and why. `stats` counts requested
    texts, unique ones, cache hits, sentences sent to the model, and texts too long or failed.
    """

    def __init__(
        self,
        model_dir: str | Path,
        *,
        cache_dir: str | Path | bool | None = None,
        decode: DecodeOptions | None = None,
        runtime: RuntimeOptions | None = None,
        retry_loops: bool = True,
        progress: bool = True,
    ) -> None:
        self.model_dir = Path(model_dir)
        self.info: ModelInfo = read_model_info(self.model_dir)
        self.decode = decode or DecodeOptions()
        self.runtime = runtime or RuntimeOptions()
        self.retry_loops = retry_loops
        self.progress = progress
        folder = default_cache_dir() if cache_dir is None else cache_dir
        self.cache = TranslationCache(Path(folder)) if folder is not False else None
        self.stats: Counter[str] = Counter()
        self.seconds = 0.0

    @property
    def fingerprint(self) -> str:
        """The model's fingerprint combined with the decoding options: what the cache is keyed by."""
        settings = {"model": self.info.fingerprint, "decode": self.decode.as_dict(), "retry_loops": self.retry_loops}
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]

    @cached_property
    def tokenizer(self) -> ModelTokenizer:
        return ModelTokenizer(self.model_dir, self.info.family)

    @cached_property
    def limits(self) -> ModelLimits:
        """The model's position limits (read from the model folder)."""
        return read_model_limits(self.model_dir)

    @cached_property
    def engine(self) -> Ct2Engine:
        return Ct2Engine(self.model_dir, self.runtime, self.limits)

    def translate(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[str]:
        """One translation per text, in order ('' for a text the model could not translate)."""
        return [outcome.text for outcome in self.translate_outcomes(texts, src_lang, tgt_lang)]

    def translate_outcomes(self, texts: Sequence[str], src_lang: str, tgt_lang: str) -> list[Outcome]:
        """One Outcome per text, in order: its translation, or the reason it has none. Failures are
        not cached (a re-run tries them again)."""
        started = time.monotonic()
        normalised = [normalise(t or "") for t in texts]
        unique = [t for t in dict.fromkeys(normalised) if t]
        self.stats["requested"] += len(texts)
        self.stats["unique"] += len(unique)
        keys = {t: cache_key(self.fingerprint, src_lang, tgt_lang, t) for t in unique}
        found = self.cache.get_many(list(keys.values())) if self.cache is not None else {}
        done = {t: Outcome(found[keys[t]]) for t in unique if keys[t] in found}
        self.stats["cache_hits"] += len(done)
        missing = [t for t in unique if t not in done]
        if missing:
            with _SentenceProgress(len(missing), self.progress) as progress:
                for start in range(0, len(missing), CHUNK_TEXTS):
                    chunk = missing[start : start + CHUNK_TEXTS]
                    outcomes = self._translate_uncached(chunk, src_lang, tgt_lang, progress)
                    done.update(zip(chunk, outcomes, strict=True))
                    if self.cache is not None:
                        pairs = zip(chunk, outcomes, strict=True)
                        self.cache.put_many((keys[t], outcome.text) for t, outcome in pairs if outcome.ok)
        self.stats["translated"] += len(missing)
        self.seconds += time.monotonic() - started
        return [done.get(t, _EMPTY) for t in normalised]

    def report(self) -> dict[str, Any]:
        """Model, cache and counts, for the build manifest."""
        decoded = self.stats["translated"]
        return {
            "model": self.info.name,
            "model_family": self.info.family,
            "model_fingerprint": self.info.fingerprint,
            "cache_fingerprint": self.fingerprint,
            "cache": str(self.cache.path) if self.cache is not None else None,
            "device": self.engine.device if "engine" in self.__dict__ else None,
            **dict(sorted(self.stats.items())),
            "seconds": round(self.seconds, 2),
            "translated_per_second": round(decoded / self.seconds, 1) if self.seconds and decoded else None,
        }

    def source_limit(self, src_lang: str) -> int | None:
        """The most subwords a sentence may have: the model's source positions less the special
        tokens the tokenizer adds (end of sentence, language token); None without a known limit."""
        if not self.limits.source:
            return None
        specials = len(self.tokenizer.encode([""], src_lang)[0])
        return self.limits.source - specials

    def _translate_uncached(
        self, texts: list[str], src_lang: str, tgt_lang: str, progress: _SentenceProgress
    ) -> list[Outcome]:
        """Translate texts (all non-empty, unique) with the model; long ones sentence by sentence.
        A text with a sentence still over the source limit is not sent to the model (TOO_LONG)."""
        limit = self.source_limit(src_lang)
        split_above = min(SPLIT_ABOVE_TOKENS, limit) if limit else SPLIT_ABOVE_TOKENS
        outcomes: list[Outcome | None] = [None] * len(texts)
        segments: list[str] = []
        owner: list[int] = []
        extra = 0  # sentences beyond one per text (splits), less the texts not sent
        for index, (text, count) in enumerate(zip(texts, self.tokenizer.count(texts), strict=True)):
            parts = split_sentences(text) if count > split_above else [text]
            self.stats["split_inputs"] += len(parts) > 1
            longest = max(self.tokenizer.count(parts)) if len(parts) > 1 else count
            if limit is not None and longest > limit:
                detail = f"{count} subwords, a sentence of {longest} > the model's {limit}"
                outcomes[index] = Outcome("", TOO_LONG, detail)
                self.stats[TOO_LONG] += 1
                extra -= 1
                continue
            segments += parts
            owner += [index] * len(parts)
            extra += len(parts) - 1
        progress.grow(extra)
        prefix = self.tokenizer.target_prefix(tgt_lang)
        sources = self.tokenizer.encode(segments, src_lang) if segments else []
        outputs = self._decode(sources, prefix, progress.advance) if sources else []
        pieces: list[list[str]] = [[] for _ in texts]
        for index, output in zip(owner, outputs, strict=True):
            if isinstance(output, Failed):
                if outcomes[index] is None:
                    outcomes[index] = Outcome("", ERROR, output.message)
                    self.stats[ERROR] += 1
            else:
                pieces[index].append(output)
        return [outcome or Outcome(" ".join(p)) for outcome, p in zip(outcomes, pieces, strict=True)]

    def _decode(
        self, sources: list[list[str]], prefix: list[str] | None, advance: Callable[[int], None]
    ) -> list[str | Failed]:
        tokens = self.engine.translate(sources, prefix, self.decode, on_batch=advance)
        outputs = [t if isinstance(t, Failed) else self.tokenizer.decode(t, prefix) for t in tokens]
        self.stats["model_sentences"] += len(sources)
        if self.retry_loops:
            looping = [i for i, out in enumerate(outputs) if isinstance(out, str) and is_loop(out)]
            if looping:
                retried = self.engine.translate([sources[i] for i in looping], prefix, self.decode, **LOOP_RETRY)
                for i, t in zip(looping, retried, strict=True):
                    if not isinstance(t, Failed):  # a retry the model raises on keeps the first output
                        outputs[i] = self.tokenizer.decode(t, prefix)
                self.stats["loop_retries"] += len(looping)
                self.stats["model_sentences"] += len(looping)
        return outputs


_EMPTY = Outcome("")


class _SentencesPerSecond(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.1f} sentences/s" if speed else "- sentences/s")


class _SentenceProgress:
    """A rich progress bar over the sentences sent to the model (silent when disabled)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = Progress(
            TextColumn("translating"), BarColumn(), MofNCompleteColumn(), _SentencesPerSecond(), TimeElapsedColumn(),
            transient=True, disable=not enabled,
        )  # fmt: skip
        self.task = self.bar.add_task("translate", total=total)

    def __enter__(self) -> _SentenceProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def advance(self, sentences: int) -> None:
        self.bar.advance(self.task, sentences)

    def grow(self, sentences: int) -> None:
        """Long inputs split into several sentences (more to do than texts), or texts too long to send (less)."""
        if sentences:
            total = self.bar.tasks[0].total or 0
            self.bar.update(self.task, total=total + sentences)
