import pytest

from capbuild.filters.base import make_filter
from capbuild.filters.clean_text import clean_caption
from capbuild.filters.text import normalise_for_dedup
from capbuild.stages.text.plan import make_plan
from capbuild.stages.text.steps import parse_spec
from capbuild.table import make_row, rows_to_table


def _table(captions):
    rows = [
        make_row(source="t", source_id=str(i), captions=[c, f"other {i}"], lang="en", image_url=None)
        for i, c in enumerate(captions)
    ]
    return rows_to_table(rows)


def _chain(*specs):
    return make_plan("en", list(specs)).chain()


def test_clean_repairs_mojibake_composes_nfc_and_collapses_whitespace():
    assert clean_caption("  caf\u00c3\u00a9 \t au\n lait  ") == "café au lait"
    assert clean_caption("cafe\u0301") == "caf\u00e9"  # combining accent composed (NFC)
    assert clean_caption("fish &amp; chips") == "fish & chips"


def test_clean_drops_rows_left_empty_and_cleans_every_caption():
    kept, rejected = _chain().apply(_table(["  a  dog ", " \n ", "ok"]))
    assert kept["caption"].to_pylist() == ["a dog", "ok"]
    assert kept["captions"].to_pylist()[0] == ["a dog", "other 0"]
    assert rejected["filter"].to_pylist() == ["clean"]
    assert rejected["filter_value"].to_pylist() == ["empty"]
    assert rejected["source_id"].to_pylist() == ["1"]


def test_len_keeps_the_inclusive_range_and_records_word_count():
    kept, rejected = _chain("len=2..3").apply(_table(["one", "one two", "one two three", "a b c d"]))
    assert kept["caption"].to_pylist() == ["one two", "one two three"]
    assert kept["word_count"].to_pylist() == [2, 3]
    assert rejected.select(["filter", "filter_value", "word_count"]).to_pylist() == [
        {"filter": "len", "filter_value": "1", "word_count": 1},
        {"filter": "len", "filter_value": "4", "word_count": 4},
    ]


@pytest.mark.parametrize(("spec", "bounds"), [("len=3..", (3, None)), ("len=..60", (None, 60)), ("len=3..60", (3, 60))])
def test_len_spec_forms(spec, bounds):
    flt = make_filter(spec)
    assert (flt.minimum, flt.maximum) == bounds


@pytest.mark.parametrize("spec", ["len", "len=..", "len=a..b", "len=9..3"])
def test_bad_len_specs_are_clear_errors(spec):
    with pytest.raises(ValueError, match="len"):
        make_filter(spec)


def test_unknown_filter_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown filter 'propm'.*clean.*dedup.*len"):
        make_filter("propm=0.8")


def test_dedup_drops_later_rows_and_names_the_first():
    table = _table(["A dog, running!", "a dog running", "A cat.", "a  DOG running"])
    kept, rejected = _chain("dedup").apply(table)
    first_key = table["key"][0].as_py()
    assert kept["caption"].to_pylist() == ["A dog, running!", "A cat."]
    assert rejected["filter_value"].to_pylist() == [f"duplicate of {first_key}"] * 2


def test_a_repeated_key_is_rejected_not_written_twice():
    kept, rejected = _chain().apply(rows_to_table([*_table(["a dog"]).to_pylist(), *_table(["a cat"]).to_pylist()]))
    assert kept["caption"].to_pylist() == ["a dog"]
    assert rejected.select(["filter", "filter_value"]).to_pylist() == [
        {"filter": "unique_key", "filter_value": "repeated key"}
    ]


def test_dedup_remembers_across_batches():
    chain = _chain("dedup")
    chain.apply(_table(["same words"]))
    kept, rejected = chain.apply(_table(["Same words."]))
    assert len(kept) == 0 and len(rejected) == 1


def test_normalisation_handles_arabic_punctuation():
    assert normalise_for_dedup("قطة، على الطاولة؟") == normalise_for_dedup("قطة على الطاولة")


def test_chain_order_counts_and_clean_first():
    chain = _chain("len=2..", "clean", "dedup")
    assert chain.labels == ["clean", "unique_key", "len=2..", "dedup"]
    chain.apply(_table(["x", "two words", "Two words", "", "three more words"]))
    assert chain.counts == {
        "clean": {"in": 5, "kept": 4, "dropped": 1, "errors": 0},
        "unique_key": {"in": 4, "kept": 4, "dropped": 0, "errors": 0},
        "len=2..": {"in": 4, "kept": 3, "dropped": 1, "errors": 0},
        "dedup": {"in": 3, "kept": 2, "dropped": 1, "errors": 0},
    }


def test_parse_spec():
    assert parse_spec(" propn = 0.8 ") == ("propn", "0.8")
    assert parse_spec("dedup") == ("dedup", None)
