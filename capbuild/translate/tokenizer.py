"""The model's own tokenizer (saved beside the converted model) and the language tokens of its family."""

from __future__ import annotations

import warnings
from pathlib import Path

from capbuild.errors import ConfigError
from capbuild.translate.langcodes import m2m100_code, nllb_code


class ModelTokenizer:
    """Turns text into the source tokens CTranslate2 takes and target tokens back into text.

    Source layout per family: marian `tokens </s>`; nllb `src_Code tokens </s>`; m2m100
    `__src__ tokens </s>`. NLLB and M2M100 translations start with the target-language token
    (`target_prefix`), which `decode` drops.
    """

    def __init__(self, model_dir: Path, family: str) -> None:
        from transformers import AutoTokenizer

        with warnings.catch_warnings():
            # MarianTokenizer recommends sacremoses, which the `translate` extra installs.
            warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
            self.hf = AutoTokenizer.from_pretrained(str(model_dir))
        self.family = family
        self.eos = self.hf.eos_token
        self._vocabulary = set(self.hf.get_vocab())

    def language_token(self, lang: str) -> str | None:
        """The token naming `lang` for this family (None for marian, whose pair is fixed)."""
        if self.family == "marian":
            return None
        token = nllb_code(lang) if self.family == "nllb" else m2m100_code(lang)
        if token not in self._vocabulary:
            raise ConfigError(f"language {lang!r} ({token}) is not in this {self.family} model's vocabulary")
        return token

    def count(self, texts: list[str]) -> list[int]:
        """Subword count of each text (without special tokens)."""
        return [len(ids) for ids in self.hf(texts, add_special_tokens=False)["input_ids"]]

    def encode(self, texts: list[str], src_lang: str) -> list[list[str]]:
        prefix = [t for t in [self.language_token(src_lang)] if t]
        ids = self.hf(texts, add_special_tokens=False)["input_ids"]
        return [[*prefix, *self.hf.convert_ids_to_tokens(i), self.eos] for i in ids]

    def target_prefix(self, tgt_lang: str) -> list[str] | None:
        token = self.language_token(tgt_lang)
        return [token] if token else None

    def decode(self, tokens: list[str], prefix: list[str] | None) -> str:
        if prefix and tokens[: len(prefix)] == prefix:
            tokens = tokens[len(prefix) :]
        return self.hf.decode(self.hf.convert_tokens_to_ids(tokens), skip_special_tokens=True).strip()
