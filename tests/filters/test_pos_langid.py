"""The language filter (lingua) on captions in Italian, Arabic, Indonesian, English and French."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from extras import require_extra

from capbuild.filters.api import filter_captions
from capbuild.filters.base import make_filter
from capbuild.filters.chain import FilterChain
from capbuild.filters.langid import DEFAULT_CANDIDATES, LanguageFilter, candidate_codes
from capbuild.stages.text.options import TextOptions
from capbuild.table import make_row, rows_to_table

require_extra("pos", "lingua")

CAPTIONS = {
    "it": "Un gatto nero dorme sul divano del soggiorno",
    "ar": "قطة سوداء تنام على الأريكة في غرفة المعيشة",
    "id": "Seekor kucing hitam tidur di atas sofa ruang tamu",
    "en": "A black cat sleeps on the living room sofa",
    "fr": "Un chat noir dort sur le canapé du salon",
}


@pytest.mark.parametrize("lang", sorted(CAPTIONS))
def test_each_language_keeps_its_own_caption_only(lang: str) -> None:
    flt = make_filter(f"lang={lang}", lang)
    kept, dropped = filter_captions(flt, list(CAPTIONS.values()))
    assert kept["caption"].to_pylist() == [CAPTIONS[lang]]
    assert kept["lang_detected"].to_pylist() == [lang]
    assert sorted(dropped["lang_detected"].to_pylist()) == sorted(set(CAPTIONS) - {lang})


def test_score_is_the_detected_language_and_its_confidence() -> None:
    flt = LanguageFilter("it")
    (code, confidence), (none, zero) = flt.score([CAPTIONS["it"], "1994 - 2001"])
    assert code == "it" and 0.5 < confidence <= 1.0
    assert (none, zero) == (None, 0.0)


def test_minimum_confidence_and_undetected_captions() -> None:
    strict = make_filter("lang=it:0.999999", "it")
    lenient = make_filter("lang=it:0.1", "it")
    assert filter_captions(strict, [CAPTIONS["it"]])[0].num_rows == 0
    assert filter_captions(lenient, [CAPTIONS["it"]])[0].num_rows == 1
    kept, dropped = filter_captions(lenient, ["12345", CAPTIONS["en"]])
    assert len(kept) == 0
    assert dropped["filter_value"].to_pylist()[0] == "undetected"
    assert dropped["filter_value"].to_pylist()[1].startswith("en:")


def test_spec_defaults_to_the_build_language_and_describes_itself() -> None:
    assert make_filter("lang", "id").describe() == "lang=id"
    assert make_filter("lang=ar:0.5", "ar").describe() == "lang=ar:0.5"


@pytest.mark.parametrize(
    ("spec", "message"),
    [("lang=xx", "'xx' is not one lingua detects"), ("lang=it:high", "LANG:MIN_SCORE"), ("lang=it:2", r"in \[0, 1\]")],
)
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_filter(spec, "it")


def test_candidates_replace_widen_or_take_all() -> None:
    assert candidate_codes("az", None) == sorted({*DEFAULT_CANDIDATES, "az"})
    assert candidate_codes("it", "en, fr") == ["en", "fr", "it"]
    assert candidate_codes("id", "+ms") == sorted({*DEFAULT_CANDIDATES, "ms"})
    assert candidate_codes("it", "all") is None
    with pytest.raises(ValueError, match="'zz' is not one lingua detects"):
        make_filter("lang=it", "it", TextOptions(lang_candidates="en,zz"))


def test_a_narrow_candidate_set_changes_the_verdict() -> None:
    # Spanish is not among the candidates it,en: the caption is taken for Italian. Among the
    # defaults (Spanish included) it is found to be Spanish and dropped.
    spanish = "Un perro blanco corre por la playa con su dueño"
    narrow = make_filter("lang=it", "it", TextOptions(lang_candidates="it,en"))
    default = make_filter("lang=it", "it")
    assert narrow.score([spanish])[0][0] == "it"
    assert default.score([spanish])[0][0] == "es"


def test_chain_writes_both_columns_for_kept_and_rejected_rows() -> None:
    rows = [
        make_row(source="wit", source_id=lang, captions=[caption], lang="it", image_url=None)
        for lang, caption in CAPTIONS.items()
    ]
    chain = FilterChain([make_filter("lang=it", "it")])
    kept, rejected = chain.apply(rows_to_table(rows))
    assert kept.select(["source_id", "lang_detected"]).to_pylist() == [{"source_id": "it", "lang_detected": "it"}]
    assert rejected["lang_detected"].to_pylist() == ["ar", "id", "en", "fr"]
    assert all(0.0 < s <= 1.0 for s in [*kept["lang_score"].to_pylist(), *rejected["lang_score"].to_pylist()])
    assert chain.counts["lang=it"] == {"in": 5, "kept": 1, "dropped": 4, "errors": 0}


def test_real_clip_italian_captions(realdata: Path) -> None:
    """clip-italian's test file mixes Italian WIT and MSCOCO-it captions; one WIT caption of an
    Italian page is an English place name."""
    lines = (realdata / "translated" / "it_coco_wit" / "clip_italian_test_file.jsonl").read_text().splitlines()
    captions = [c for line in lines for c in json.loads(line)["captions"]]
    kept, dropped = filter_captions(make_filter("lang=it:0.5", "it"), captions)
    assert dropped["caption"].to_pylist() == ["anhinga trail"]
    assert len(kept) == len(captions) - 1
