"""How the PROPN filter tags captions (`PosOptions`, a part of the propn step's config)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from capbuild.errors import ConfigError, MissingExtraError
from capbuild.options import opt

if TYPE_CHECKING:
    from capbuild.stages.text.options import TextOptions

POS_BACKENDS = ("spacy", "stanza", "hf")
PROPN_DENOMINATORS = ("words", "all")


def require_extra(module: str, package: str) -> None:
    """A clear error when a package of the `pos` extra is missing."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(package, "pos", "the POS and language filters")


@dataclass(frozen=True)
class PosOptions:
    """How the PROPN filter tags captions (see `--pos-*` and `--propn-denominator` in TextOptions)."""

    pos_backend: str = field(default="spacy", metadata=opt("POS tagger: spacy, stanza or hf."))
    pos_model: str | None = field(default=None, metadata=opt("spaCy pipeline or transformers model."))
    pos_model_dir: str | None = field(default=None, metadata=opt("Stanza resources folder."))
    pos_tag_map: str | None = field(default=None, metadata=opt("JSON file {model label: UPOS tag}."))
    pos_workers: int = field(default=1, metadata=opt("POS tagging processes.", operational=True))
    pos_batch_size: int = field(default=256, metadata=opt("Captions per POS batch.", operational=True))
    propn_denominator: str = field(default="words", metadata=opt("propn ratio over 'words' or 'all' tokens."))

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
    def from_options(cls, options: TextOptions) -> PosOptions:
        """The POS fields of the build's TextOptions."""
        return cls(**{f.name: getattr(options, f.name) for f in fields(cls)})
