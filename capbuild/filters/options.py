"""The build options of the POS and language filters, and their defaults for Python callers.

The CLI adds `CLI_OPTIONS` to every build command; their values reach the filters through
`FilterContext.options`, where a Python caller may leave any of them out.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, fields
from typing import Any

from capbuild.cli_params import CliOption, option
from capbuild.errors import ConfigError, MissingExtraError
from capbuild.filters.base import OPERATIONAL_OPTIONS

POS_BACKENDS = ("spacy", "stanza", "hf")
PROPN_DENOMINATORS = ("words", "all")


def require_extra(module: str, package: str) -> None:
    """A clear error when a package of the `pos` extra is missing."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(package, "pos", "the POS and language filters")


@dataclass(frozen=True)
class PosOptions:
    """How the PROPN filter tags captions (see `--pos-*` and `--propn-denominator`)."""

    pos_backend: str = "spacy"
    pos_model: str | None = None
    pos_model_dir: str | None = None
    pos_tag_map: str | None = None
    pos_workers: int = 1
    pos_batch_size: int = 256
    propn_denominator: str = "words"

    def __post_init__(self) -> None:
        if self.pos_backend not in POS_BACKENDS:
            raise ConfigError(f"--pos-backend {self.pos_backend!r}: choose one of {', '.join(POS_BACKENDS)}")
        if self.propn_denominator not in PROPN_DENOMINATORS:
            raise ConfigError(
                f"--propn-denominator {self.propn_denominator!r}: choose one of {', '.join(PROPN_DENOMINATORS)}"
            )
        if self.pos_workers < 1 or self.pos_batch_size < 1:
            raise ConfigError("--pos-workers and --pos-batch-size must be at least 1")

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> PosOptions:
        """The POS options found in a FilterContext's options (others ignored, missing ones default)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in options.items() if k in names and v is not None})


OPERATIONAL_OPTIONS.update({"pos_workers", "pos_batch_size"})

CLI_OPTIONS: list[CliOption] = [
    option(
        "pos_backend",
        str,
        "spacy",
        "--pos-backend",
        help="POS tagger of --filter propn=R: spacy, stanza (Indonesian, Arabic, ...) or hf (transformers).",
    ),
    option(
        "pos_model",
        str | None,
        None,
        "--pos-model",
        help="spaCy pipeline or transformers model (name or path); default: the language's spaCy *_sm pipeline.",
    ),
    option(
        "pos_model_dir",
        str | None,
        None,
        "--pos-model-dir",
        help="Stanza resources folder (default: $STANZA_RESOURCES_DIR, then ~/stanza_resources).",
    ),
    option(
        "pos_tag_map",
        str | None,
        None,
        "--pos-tag-map",
        help="JSON file {model label: UPOS tag} for an hf model whose labels are neither UPOS nor CAMeL's.",
    ),
    option(
        "pos_workers",
        int,
        1,
        "--pos-workers",
        help="spaCy tagging processes, forked once the model is loaded (not spaCy's n_process); 2,000+ captions each.",
    ),
    option("pos_batch_size", int, 256, "--pos-batch-size", help="Captions per POS tagging batch."),
    option(
        "propn_denominator",
        str,
        "words",
        "--propn-denominator",
        help="propn ratio over 'words' (punctuation, symbols, spaces not counted) or 'all' tokens.",
    ),
    option(
        "lang_candidates",
        str | None,
        None,
        "--lang-candidates",
        help="Languages --filter lang may detect: 'it,en,fr' replaces the default set, '+ms,az' widens it, 'all'.",
    ),
]
