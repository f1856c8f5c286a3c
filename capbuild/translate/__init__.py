"""Machine translation with CTranslate2: convert models, translate lists of strings (cached), and
the translate / mt_degenerate steps of a build's filter chain.

    from capbuild.translate import Translator
    Translator("opus-mt-en-it-ct2/").translate(["A dog on the beach."], src_lang="en", tgt_lang="it")
"""

from __future__ import annotations

from capbuild.lazy import lazy_exports

# Imported on first use, so that reading the translation options (the CLI) loads no engine.
_EXPORTS = {
    "DecodeOptions": "capbuild.translate.engine",
    "RuntimeOptions": "capbuild.translate.engine",
    "Translator": "capbuild.translate.translator",
}
__all__ = list(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
