"""The transformers backend with a tiny model whose predictions are known (tests/pos_fixtures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from extras import require_extra
from pos_fixtures import TINY_LABELS, TINY_MAX_LENGTH, build_tiny_pos_model

from capbuild.errors import InputError
from capbuild.filters.api import filter_captions
from capbuild.filters.base import make_filter
from capbuild.filters.options import PosOptions
from capbuild.filters.pos_hf import CAMEL_TAG_MAP, HfBackend, merge_word_pieces, resolve_tag_map
from capbuild.stages.text.options import TextOptions

require_extra("pos", "transformers")

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_pos_model(tmp_path_factory.mktemp("tiny-pos"))


@pytest.fixture(scope="module")
def backend(tiny_model: Path) -> HfBackend:
    return HfBackend.load(PosOptions(pos_backend="hf", pos_model=str(tiny_model), pos_batch_size=2))


def test_the_fixture_splits_anfield_into_two_pieces(backend: HfBackend) -> None:
    assert backend.tokenizer.tokenize("أنفيلد") == ["أنف", "##يلد"]


def test_a_word_takes_the_tag_of_its_first_piece(backend: HfBackend) -> None:
    # Mohamed Salah in Anfield stadium.  -> noun_prop noun_prop prep noun noun_prop(+##verb) punc
    assert backend.tag(["محمد صلاح في ملعب أنفيلد."]) == [["PROPN", "PROPN", "ADP", "NOUN", "PROPN", "PUNCT"]]


def test_batches_keep_the_input_order_and_empty_texts(backend: HfBackend) -> None:
    texts = ["يلعب كرة القدم", "", "محمد", "محمد صلاح في ملعب أنفيلد."]
    assert backend.tag(texts) == [
        ["VERB", "NOUN", "NOUN"],
        [],
        ["PROPN"],
        ["PROPN", "PROPN", "ADP", "NOUN", "PROPN", "PUNCT"],
    ]


def test_a_caption_longer_than_the_model_is_tagged_to_its_last_word(backend: HfBackend) -> None:
    words = ["محمد", "يلعب"] * TINY_MAX_LENGTH  # 32 words, 34 pieces with [CLS] and [SEP]: three chunks
    assert backend.tag([" ".join(words)]) == [["PROPN", "VERB"] * TINY_MAX_LENGTH]


def test_propn_filter_with_the_hf_backend(tiny_model: Path) -> None:
    options = TextOptions(pos_backend="hf", pos_model=str(tiny_model))
    kept, dropped = filter_captions(make_filter("propn=0.8", "ar", options), ["محمد صلاح", "محمد يلعب كرة القدم ."])
    assert kept.select(["caption", "propn_ratio"]).to_pylist() == [
        {"caption": "محمد يلعب كرة القدم .", "propn_ratio": 0.25}
    ]
    assert dropped["propn_ratio"].to_pylist() == [1.0]


def test_merge_word_pieces_skips_special_tokens_and_later_pieces() -> None:
    tags: dict[int, str] = {}
    merge_word_pieces([None, 0, 0, 1, None], ["PUNCT", "PROPN", "VERB", "NOUN", "PUNCT"], tags)
    merge_word_pieces([None, 1, 2, None], ["PUNCT", "VERB", "ADP", "PUNCT"], tags)  # the next chunk
    assert tags == {0: "PROPN", 1: "NOUN", 2: "ADP"}


def test_tag_maps(tmp_path: Path) -> None:
    assert resolve_tag_map(TINY_LABELS) == {
        "noun": "NOUN",
        "noun_prop": "PROPN",
        "prep": "ADP",
        "punc": "PUNCT",
        "verb": "VERB",
    }
    assert resolve_tag_map(["PROPN", "noun"]) == {"PROPN": "PROPN", "noun": "NOUN"}
    assert CAMEL_TAG_MAP["noun_prop"] == "PROPN"
    custom = tmp_path / "map.json"
    custom.write_text(json.dumps({"NNP": "PROPN", "NN": "NOUN"}))
    assert resolve_tag_map(["NNP", "NN"], str(custom)) == {"NNP": "PROPN", "NN": "NOUN"}
    with pytest.raises(ValueError, match=r"labels \['NNP'\] have no UPOS tag: pass --pos-tag-map"):
        resolve_tag_map(["NNP", "noun"])
    custom.write_text(json.dumps({"NNP": "PROPER"}))
    with pytest.raises(ValueError, match=r"maps to \['PROPER'\], which are not UPOS"):
        resolve_tag_map(["NNP"], str(custom))


def test_missing_model_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--pos-backend hf needs --pos-model"):
        make_filter("propn=0.8", "ar", TextOptions(pos_backend="hf"))
    missing = tmp_path / "no-model"
    with pytest.raises(InputError, match=f"cannot find the POS model '{missing}'.*hf download"):
        HfBackend.load(PosOptions(pos_backend="hf", pos_model=str(missing)))
