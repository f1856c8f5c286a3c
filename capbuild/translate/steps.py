"""The translation steps of a plan: `translate` (a rewriter) and the MT output checks (filters),
placed by `make_plan` after the user's --filter steps and before the --post-filter steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from capbuild.errors import ConfigError
from capbuild.options import opt
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.steps import Filter, Rewriter, Step, register_step
from capbuild.translate.checks import MAX_FOREIGN_SCRIPT
from capbuild.translate.engine import DecodeOptions, RuntimeOptions
from capbuild.translate.filters import MAX_ERRORS, DegenerateTranslationFilter, TranslateFilter
from capbuild.translate.model import ModelInfo, check_model_dir, read_model_info


@lru_cache(maxsize=8)
def _model_info(folder: str) -> ModelInfo:
    return read_model_info(Path(folder))


@register_step
@dataclass(frozen=True)
class Translate(Rewriter):
    """Translates every row not yet in `target_lang` with the CTranslate2 model in `mt_model`."""

    name: ClassVar[str] = "translate"
    named: ClassVar[bool] = False
    target_lang: str = field(default="en", metadata=opt("Language translated into (the build's --lang)."))
    mt_model: str = field(default="", metadata=opt("CTranslate2 model folder."))
    beam_size: int = field(default=1, metadata=opt("Beam size (1: greedy)."))
    mt_repetition_penalty: float = field(default=1.0, metadata=opt("Penalty (>1) on repeated tokens."))
    mt_no_repeat_ngram: int = field(default=0, metadata=opt("Forbid repeated n-grams of this size."))
    mt_compute_type: str | None = field(default=None, metadata=opt("CTranslate2 compute type."))
    mt_devices: str = field(default="auto", metadata=opt("Devices.", operational=True))
    mt_batch_tokens: int | None = field(default=None, metadata=opt("Tokens a batch.", operational=True))
    mt_cache: str | None = field(default=None, metadata=opt("Translation cache folder.", operational=True))
    mt_progress: bool = field(default=True, metadata=opt("Progress bar.", operational=True))
    mt_max_errors: float = field(
        default=MAX_ERRORS, metadata=opt("Share of captions the model may fail on.", operational=True)
    )

    @classmethod
    def from_options(cls, target_lang: str, options: TextOptions) -> Translate:
        """The step for a build into `target_lang` with the build's --mt-* options."""
        if not options.mt_model:
            raise ConfigError("--translate needs --mt-model CT2_DIR (make one with `capbuild translate convert`)")
        return cls(
            target_lang=target_lang,
            mt_model=str(options.mt_model),
            beam_size=options.beam_size,
            mt_repetition_penalty=options.mt_repetition_penalty,
            mt_no_repeat_ngram=options.mt_no_repeat_ngram,
            mt_compute_type=options.mt_compute_type,
            mt_devices=options.mt_devices,
            mt_batch_tokens=options.mt_batch_tokens,
            mt_cache=options.mt_cache,
            mt_progress=options.mt_progress,
            mt_max_errors=options.mt_max_errors,
        )

    def check(self) -> None:
        check_model_dir(Path(self.mt_model))

    @property
    def info(self) -> ModelInfo:
        return _model_info(str(Path(self.mt_model).resolve()))

    def translator_options(self) -> dict[str, Any]:
        """The Translator's keyword arguments."""
        return {
            "cache_dir": self.mt_cache,
            "decode": DecodeOptions(
                beam_size=self.beam_size or 1,
                repetition_penalty=self.mt_repetition_penalty or 1.0,
                no_repeat_ngram_size=self.mt_no_repeat_ngram or 0,
            ),
            "runtime": RuntimeOptions(
                devices=self.mt_devices or "auto",
                compute_type=self.mt_compute_type,
                batch_tokens=self.mt_batch_tokens,
            ),
            "progress": self.mt_progress,
        }

    def build(self) -> TranslateFilter:
        return TranslateFilter(Path(self.mt_model), self.target_lang, self.translator_options(), self.mt_max_errors)

    def describe(self) -> str:
        return f"translate={self.target_lang} model={self.info.name}@{self.info.fingerprint}"


@register_step
@dataclass(frozen=True)
class MtDegenerate(Filter):
    """The MT output checks (capbuild.translate.checks): drops translations that are empty, loop,
    have an absurd length ratio, copy their source, are in the wrong script or leave quotes open."""

    name: ClassVar[str] = "mt_degenerate"
    named: ClassVar[bool] = False
    max_foreign_script: float = field(
        default=MAX_FOREIGN_SCRIPT, metadata=opt("Largest share of letters outside the target's script.")
    )

    def build(self) -> DegenerateTranslationFilter:
        return DegenerateTranslationFilter(self.max_foreign_script)

    def describe(self) -> str:
        return self.build().describe()


def translation_steps(target_lang: str, options: TextOptions) -> list[Step]:
    """[translate, the MT checks] of a build that translates into `target_lang`."""
    if not target_lang:
        raise ConfigError("translation needs a target language (--lang)")
    return [Translate.from_options(target_lang, options), MtDegenerate(options.mt_max_foreign_script)]
