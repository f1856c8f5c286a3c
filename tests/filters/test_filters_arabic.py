"""Arabic preprocessing filters: tashkeel and tatweel stripped, short captions dropped, others untouched."""

from __future__ import annotations

import pytest

from capbuild.filters.arabic import count_tokens, normalise_arabic
from capbuild.filters.base import make_filter
from capbuild.filters.chain import FilterChain
from capbuild.stages.text.steps import parse_step
from capbuild.table import make_row, rows_to_table


def _table(captions: list[tuple[str, str]]):
    rows = [
        make_row(source="t", source_id=str(i), captions=[text], lang=lang, image_url=None)
        for i, (text, lang) in enumerate(captions)
    ]
    return rows_to_table(rows)


def test_normalise_strips_tashkeel_and_tatweel_keeps_digits_and_latin():
    assert normalise_arabic("مَدِيـــنَةُ دِمَشْقَ") == "مدينة دمشق"
    assert normalise_arabic("صورة لـ iPhone 15 عام ٢٠٢٣") == "صورة ل iPhone 15 عام ٢٠٢٣"
    assert normalise_arabic("  القُرْآن   الكَرِيم ") == "القرآن الكريم"


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("قطة على الطاولة", 3), ("قطة - كلب", 2), ("صورة 2020", 2), ("ـــ", 0), ("", 0)],
)
def test_count_tokens(text, tokens):
    assert count_tokens(normalise_arabic(text)) == tokens


def test_chain_normalises_then_drops_short_arabic_captions_only():
    chain = FilterChain([make_filter("ar-normalize", "ar"), make_filter("ar-min-tokens=3", "ar")])
    kept, rejected = chain.apply(
        _table(
            [
                ("رَجُلٌ يَرْكَبُ دَرَّاجَةً فِي الشَّارِعِ", "ar"),
                ("قِطَّةٌ", "ar"),
                ("a dog", "en"),
                ("ـًـ", "ar"),
                ("مبنى   من   القرن 19", "ar"),
            ]
        )
    )
    assert kept["caption"].to_pylist() == ["رجل يركب دراجة في الشارع", "a dog", "مبنى من القرن 19"]
    assert rejected.select(["filter", "filter_value"]).to_pylist() == [
        {"filter": "ar-normalize", "filter_value": "empty after normalisation"},
        {"filter": "ar-min-tokens", "filter_value": "1"},
    ]
    assert chain.counts["ar-min-tokens=3"] == {"in": 4, "kept": 3, "dropped": 1, "errors": 0}


def test_min_tokens_spec_is_checked():
    with pytest.raises(ValueError, match="whole number"):
        make_filter("ar-min-tokens=three", "ar")
    assert parse_step("ar-min-tokens", "ar").describe() == "ar-min-tokens=3"
