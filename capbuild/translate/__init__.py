"""Machine translation with CTranslate2: convert models, translate lists of strings (cached), and
the translate / mt_degenerate steps of a build's filter chain.

    from capbuild.translate import Translator
    Translator("opus-mt-en-it-ct2/").translate(["A dog on the beach."], src_lang="en", tgt_lang="it")
"""

from capbuild.translate.engine import DecodeOptions, RuntimeOptions
from capbuild.translate.translator import Translator

__all__ = ["DecodeOptions", "RuntimeOptions", "Translator"]
