"""The translation options every build command takes (they reach the filters as FilterContext.options)."""

from __future__ import annotations

from typing import Any

from capbuild.cli_params import option
from capbuild.filters.base import OPERATIONAL_OPTIONS

# Where and in what batches translation runs; the cache keeps a resumed build's translations as they were.
# The error budget changes whether a build stops, never what a finished build holds.
OPERATIONAL_OPTIONS.update({"mt_devices", "mt_batch_tokens", "mt_cache", "mt_max_errors"})

TRANSLATE_OPTIONS = [
    option("translate", bool, False, "--translate", help="Translate the captions from --src-lang into --lang."),
    option("mt_model", str | None, None, "--mt-model", help="CTranslate2 model folder (capbuild translate convert)."),
    option("src_lang", str, "en", "--src-lang", help="Language of the source captions when translating."),
    option("beam_size", int, 1, "--beam-size", help="Beam size (1: greedy)."),
    option("mt_batch_tokens", int | None, None, "--mt-batch-tokens", help="Tokens a batch (8192 GPU, 2048 CPU)."),
    option("mt_devices", str, "auto", "--mt-devices", help="'auto' (all GPUs, else CPU), 'cpu', or GPU indices: 0,1."),
    option("mt_compute_type", str | None, None, "--mt-compute-type", help="Default int8_float16 on GPU, int8 on CPU."),
    option("mt_cache", str | None, None, "--mt-cache", help="Translation cache folder (default: user cache dir)."),
    option("mt_repetition_penalty", float, 1.0, "--mt-repetition-penalty", help="Penalty (>1) on repeated tokens."),
    option("mt_no_repeat_ngram", int, 0, "--mt-no-repeat-ngram", help="Forbid repeated n-grams of this size."),
    option("mt_max_errors", float, 0.01, "--mt-max-errors",
           help="Share of captions the model may fail on (rejected as mt_error) before the build stops."),
    option("mt_max_foreign_script", float, 0.5, "--mt-max-foreign-script",
           help="Reject a translation (wrong_script) with more of its letters than this outside the target's script."),
]  # fmt: skip


def builder_lang(options: dict[str, Any]) -> str:
    """The language the builder's captions are in: --src-lang when translating, else --lang."""
    return options["src_lang"] if options.get("translate") else options["lang"]


def translation_target(options: dict[str, Any]) -> dict[str, Any]:
    """Extra filter options when translating: the build's --lang is the translation's target."""
    return {"target_lang": options["lang"]} if options.get("translate") else {}
