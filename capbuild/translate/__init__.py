"""Machine translation with CTranslate2: convert models, translate lists of strings (cached), and
the translate / mt_degenerate steps of a build's filter chain.

    from capbuild.translate import Translator
    Translator("opus-mt-en-it-ct2/").translate(["A dog on the beach."], src_lang="en", tgt_lang="it")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Imported on first use, so that reading the translation options (the CLI) loads no engine.
_EXPORTS = {
    "DecodeOptions": "capbuild.translate.engine",
    "RuntimeOptions": "capbuild.translate.engine",
    "Translator": "capbuild.translate.translator",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
