"""The Stanza backend: the ratio from stanza Documents, the local-models checks, and a real
pipeline when STANZA_RESOURCES_DIR holds one (no Stanza model can be downloaded here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from extras import require_extra

from capbuild.filters.base import make_filter
from capbuild.filters.options import PosOptions
from capbuild.filters.pos import propn_ratio
from capbuild.filters.pos_backends import StanzaBackend, stanza_dir, stanza_document_upos, stanza_processors
from capbuild.stages.text.options import TextOptions

require_extra("pos", "stanza")

Document = pytest.importorskip("stanza.models.common.doc").Document


def _document(*sentences: list[tuple[int | tuple[int, int], str, str | None]]) -> Document:
    return Document(
        [[{"id": i, "text": text, **({"upos": upos} if upos else {})} for i, text, upos in s] for s in sentences]
    )


def test_ratio_from_a_document_with_multi_word_tokens() -> None:
    # Italian "Roberto Baggio nel 1994." as Stanza tags it: "nel" is one token and two words (in + il).
    document = _document(
        [
            (1, "Roberto", "PROPN"),
            (2, "Baggio", "PROPN"),
            ((3, 4), "nel", None),
            (3, "in", "ADP"),
            (4, "il", "DET"),
            (5, "1994", "NUM"),
            (6, ".", "PUNCT"),
        ]
    )
    upos = stanza_document_upos(document)
    assert upos == ["PROPN", "PROPN", "ADP", "DET", "NUM", "PUNCT"]
    assert propn_ratio(upos) == pytest.approx(2 / 5)
    assert propn_ratio(upos, "all") == pytest.approx(2 / 6)


def test_ratio_from_a_document_of_two_sentences() -> None:
    # Indonesian "Joko Widodo di Jakarta. Presiden Indonesia."
    document = _document(
        [(1, "Joko", "PROPN"), (2, "Widodo", "PROPN"), (3, "di", "ADP"), (4, "Jakarta", "PROPN"), (5, ".", "PUNCT")],
        [(1, "Presiden", "NOUN"), (2, "Indonesia", "PROPN"), (3, ".", "PUNCT")],
    )
    assert propn_ratio(stanza_document_upos(document)) == pytest.approx(4 / 6)


class _AnalysedPipeline:
    """Answers bulk_process as a Stanza pipeline does, with Documents built from known analyses."""

    def __init__(self, analyses: dict[str, list[tuple[int | tuple[int, int], str, str | None]]]) -> None:
        self.analyses = analyses
        self.seen: list[str] = []

    def bulk_process(self, texts: list[str]) -> list[Document]:
        self.seen += texts
        return [_document(self.analyses[t]) for t in texts]


def test_backend_tags_in_order_and_never_sends_empty_texts() -> None:
    pipeline = _AnalysedPipeline(
        {
            "Joko Widodo": [(1, "Joko", "PROPN"), (2, "Widodo", "PROPN")],
            "kucing tidur.": [(1, "kucing", "NOUN"), (2, "tidur", "VERB"), (3, ".", "PUNCT")],
        }
    )
    backend = StanzaBackend.__new__(StanzaBackend)
    backend.pipeline = pipeline
    assert backend.tag(["kucing tidur.", " ", "Joko Widodo"]) == [["NOUN", "VERB", "PUNCT"], [], ["PROPN", "PROPN"]]
    assert pipeline.seen == ["kucing tidur.", "Joko Widodo"]


def _resources(folder: Path, languages: dict[str, bool]) -> Path:
    """A resources.json as Stanza writes it (lang -> processors), with a pos folder per language."""
    resources = {"italian": {"alias": "it"}}
    for lang, mwt in languages.items():
        resources[lang] = {
            "tokenize": {"combined": {}},
            "pos": {"combined": {}},
            **({"mwt": {"combined": {}}} if mwt else {}),
        }
        (folder / lang / "pos").mkdir(parents=True)
    (folder / "resources.json").write_text(json.dumps(resources))
    return folder


def test_processors_add_mwt_where_the_language_needs_it(tmp_path: Path) -> None:
    folder = _resources(tmp_path, {"it": True, "id": False})
    assert stanza_processors("it", folder) == "tokenize,mwt,pos"
    assert stanza_processors("italian", folder) == "tokenize,mwt,pos"
    assert stanza_processors("id", folder) == "tokenize,pos"


def test_missing_models_name_the_download_command(tmp_path: Path) -> None:
    options = TextOptions(pos_backend="stanza", pos_model_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"no Stanza models in .*stanza.download\('id'"):
        make_filter("propn=0.8", "id", options)
    (tmp_path / "resources.json").write_text(json.dumps({"id": {"tokenize": {}, "pos": {}}}))
    with pytest.raises(ValueError, match=r"POS model for 'id' is not in"):
        make_filter("propn=0.8", "id", options)
    with pytest.raises(ValueError, match="Stanza has no models for language 'xx'"):
        make_filter("propn=0.8", "xx", options)


def test_model_dir_defaults_to_stanza_resources_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("STANZA_RESOURCES_DIR", str(tmp_path))
    assert stanza_dir(PosOptions(pos_backend="stanza")) == tmp_path
    assert stanza_dir(PosOptions(pos_backend="stanza", pos_model_dir="/models")) == Path("/models")


def _installed_stanza_language() -> tuple[Path, str] | None:
    folder = os.environ.get("STANZA_RESOURCES_DIR")
    if not folder or not (Path(folder) / "resources.json").exists():
        return None
    for lang in ("it", "id", "fr", "en", "ar"):
        if (Path(folder) / lang / "pos").is_dir() and (Path(folder) / lang / "tokenize").is_dir():
            return Path(folder), lang
    return None


@pytest.mark.slow
@pytest.mark.skipif(
    _installed_stanza_language() is None,
    reason="no Stanza models here: set STANZA_RESOURCES_DIR to a folder where stanza.download() put it/id/fr/en/ar",
)
def test_real_stanza_pipeline_tags_a_name_as_propn() -> None:
    folder, lang = _installed_stanza_language()  # type: ignore[misc]
    backend = StanzaBackend(lang, folder, batch_size=8)
    sentence = {
        "it": "Roberto Baggio",
        "id": "Joko Widodo",
        "fr": "Pierre Dupont",
        "en": "John Smith",
        "ar": "محمد صلاح",
    }
    tags = backend.tag([sentence[lang], ""])
    assert tags[1] == []
    assert propn_ratio(tags[0]) >= 0.5
