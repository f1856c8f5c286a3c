"""Fast checks of the cards helpers: shard patterns, weights, licences, size categories."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import braceexpand
import pyarrow as pa
import pytest

from capbuild.cards.card import license_metadata, make_card, md_table, size_category
from capbuild.cards.facts import BuildFacts, CaptionStats, caption_stats, hf_split_name, shard_pattern, summary
from capbuild.cards.mix import parse_weights
from capbuild.cards.publish import human_size
from capbuild.cards.report import caption_histograms
from capbuild.table import caption_schema, make_row, rows_to_table, write_part

COCO = {"name": "coco", "license": "cc-by-4.0", "citation": "@x{}", "homepage": "https://cocodataset.org"}
WIT = {
    "name": "wit",
    "license": "cc-by-sa-3.0",
    "citation": "@y{}",
    "homepage": "https://github.com/google-research-datasets/wit",
}
FLICKR = {"name": "flickr8k", "license": "other", "citation": "@z{}", "homepage": "https://example.org/flickr8k"}


@pytest.mark.parametrize(
    ("names", "pattern"),
    [
        (["00000.tar"], "shards/00000.tar"),
        (["00000.tar", "00001.tar", "00002.tar"], "shards/{00000..00002}.tar"),
        (["00003.tar", "00004.tar"], "shards/{00003..00004}.tar"),
        (["00000.tar", "00002.tar", "00005.tar"], "shards/{00000,00002,00005}.tar"),
    ],
)
def test_shard_pattern_expands_to_exactly_the_shards(names: list[str], pattern: str) -> None:
    assert shard_pattern("shards/", names) == pattern
    assert list(braceexpand.braceexpand(pattern)) == [f"shards/{n}" for n in names]


def test_weights_are_parsed_and_checked() -> None:
    assert parse_weights("3,1", 2) == [3.0, 1.0]
    assert parse_weights(None, 3) == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="one weight per build"):
        parse_weights("3", 2)
    with pytest.raises(ValueError, match="numbers separated by commas"):
        parse_weights("a,b", 2)
    with pytest.raises(ValueError, match="positive"):
        parse_weights("0,1", 2)


def test_licence_is_the_sources_own_or_other_with_details() -> None:
    assert license_metadata({"coco": COCO}) == {"license": "cc-by-4.0"}
    mixed = license_metadata({"coco": COCO, "wit": WIT})
    assert mixed["license"] == "other"
    assert mixed["license_name"] == "mixed"
    assert "coco: cc-by-4.0" in mixed["license_details"] and "wit: cc-by-sa-3.0" in mixed["license_details"]
    single_other = license_metadata({"flickr8k": FLICKR})
    assert single_other["license"] == "other"
    assert single_other["license_link"] == FLICKR["homepage"]


def test_size_categories_follow_the_hub_names() -> None:
    assert size_category(0) == "n<1K"
    assert size_category(999) == "n<1K"
    assert size_category(1_000) == "1K<n<10K"
    assert size_category(2_500_000) == "1M<n<10M"


def test_small_formatting_helpers() -> None:
    assert human_size(512) == "512 B"
    assert human_size(1536) == "1.5 KB"
    assert human_size(3 * 1024**3) == "3.0 GB"
    assert hf_split_name("val") == "val"
    assert hf_split_name("dev-2") == "dev_2"
    assert md_table(["a", "b"], [["x|y", 1]]).splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 1 |"]


def test_summary_gives_exact_medians_from_counts() -> None:
    assert summary(Counter({1: 1, 2: 1, 10: 1})) == {"mean": 4.333, "median": 2, "min": 1, "max": 10}
    assert summary(Counter({3: 2, 5: 2})) == {"mean": 4.0, "median": 4.0, "min": 3, "max": 5}
    assert summary(Counter()) == {}


def test_caption_stats_read_part_by_part(tmp_path: Path) -> None:
    def row(caption: str, split: str, propn: float | None, translated: bool = False) -> dict[str, object]:
        return {
            **make_row(source="wit", source_id=caption, captions=[caption], lang="it", image_url=None, split=split),
            "lang_orig": "en" if translated else "it",
            "propn_ratio": propn,
        }

    schema = caption_schema({"propn_ratio": pa.float32()})
    write_part(rows_to_table([row("un gatto nero", "train", 0.0), row("Roma", "train", 1.0)], schema), tmp_path, 0)
    write_part(
        rows_to_table([row("un gatto nero", "val", None, True), row("due cani", "val", 0.5)], schema), tmp_path, 1
    )
    stats = caption_stats(tmp_path)
    assert stats.rows == 4
    assert stats.per_split == {"train": 2, "val": 2}
    assert stats.languages == ["en", "it"]
    assert stats.translated == 1
    assert stats.unique_captions == 3, "a caption repeated across parts counts once"
    assert stats.words == {"mean": 2.25, "median": 2.5, "min": 1, "max": 3}
    assert stats.propn_ratio == {"mean": 0.5, "median": 0.5, "min": 0.0, "max": 1.0}


def test_histograms_show_propn_ratio_when_the_table_has_it(tmp_path: Path) -> None:
    schema = caption_schema({"propn_ratio": pa.float32()})
    rows = [
        {**make_row(source="wit", source_id=str(i), captions=[c], lang="it", image_url=None), "propn_ratio": p}
        for i, (c, p) in enumerate([("Roberto Baggio nel 1994", 0.75), ("un gatto nero", 0.0), ("Roma", None)])
    ]
    write_part(rows_to_table(rows, schema), tmp_path / "captions", 0)
    words, propn = caption_histograms(caption_stats(tmp_path / "captions"))
    assert words.edges[0] == 1 and words.edges[-1] == 5
    assert words.counts == [1, 0, 1, 1]
    assert propn.title.startswith("PROPN ratio")
    assert sum(propn.counts) == 2
    assert propn.counts[0] == 1 and propn.counts[7] == 1


def translated_wit_coco_facts(tmp_path: Path) -> BuildFacts:
    """A build of WIT and COCO captions translated to Italian, as its manifest records it."""
    translate = "translate=it model=opus-mt-en-it@0a1b2c"
    manifest = {
        "capbuild": "0.1.0",
        "fingerprint": "feedface00000000",
        "config": {
            "plan": [
                {"name": "clean", "kind": "rewriter", "spec": "clean", "options": {}, "scores": {}},
                {
                    "name": "len",
                    "kind": "filter",
                    "spec": "len=3..60",
                    "options": {"minimum": 3, "maximum": 60},
                    "scores": {"word_count": "int32"},
                },
                {
                    "name": "translate",
                    "kind": "rewriter",
                    "spec": translate,
                    "options": {"target_lang": "it", "beam_size": 2, "mt_repetition_penalty": 1.2},
                    "scores": {},
                },
                {"name": "mt_degenerate", "kind": "filter", "spec": "mt_degenerate", "options": {}, "scores": {}},
            ],
            "images": None,
        },
        "versions": {"python": "3.11"},
        "sources": {"coco": COCO, "wit": WIT},
        "stages": {"text": {"done": True}, "images": {"done": False}},
        "counts": {
            "text": {
                "source_rows": 10,
                "builder": {"skipped": {}, "repaired": {}},
                "steps": [
                    {
                        "name": "clean",
                        "kind": "rewriter",
                        "spec": "clean",
                        "counts": {"in": 10, "kept": 10, "dropped": 0, "errors": 0},
                        "report": {},
                    },
                    {
                        "name": "len",
                        "kind": "filter",
                        "spec": "len=3..60",
                        "counts": {"in": 10, "kept": 9, "dropped": 1, "errors": 0},
                        "report": {},
                    },
                    {
                        "name": "translate",
                        "kind": "rewriter",
                        "spec": translate,
                        "counts": {"in": 9, "kept": 9, "dropped": 0, "errors": 0},
                        "report": {"model": "opus-mt-en-it", "rows_translated": 9, "cache_hits": 3},
                    },
                    {
                        "name": "mt_degenerate",
                        "kind": "filter",
                        "spec": "mt_degenerate",
                        "counts": {"in": 9, "kept": 8, "dropped": 1, "errors": 0},
                        "report": {},
                    },
                ],
                "captions": 8,
                "rejected": 2,
                "per_source": {"coco": {"captions": 5, "rejected": 1}, "wit": {"captions": 3, "rejected": 1}},
            }
        },
    }
    stats = CaptionStats(rows=8, per_split={"train": 8}, languages=["en", "it"], translated=8, unique_captions=8)
    drops = {"coco": {"len=3..60": 1}, "wit": {"mt_degenerate": 1}}
    return BuildFacts(out=tmp_path, manifest=manifest, splits={}, sizes={}, captions=stats, drops=drops)


def test_card_of_a_translated_mix_of_sources(tmp_path: Path) -> None:
    card = make_card(translated_wit_coco_facts(tmp_path))
    data = card.data
    assert data.license == "other" and data.license_name == "mixed"
    assert data.language == ["en", "it"] and data.multilinguality == "multilingual"
    assert "machine-generated" in data.language_creators
    assert data.source_datasets == ["coco", "wit"]
    text = card.text
    assert "8 captions were machine-translated" in text
    assert "| step | `translate=it model=opus-mt-en-it@0a1b2c` |" in text
    assert "| mt_repetition_penalty | `1.2` |" in text and "| rows_translated | `9` |" in text
    assert "mt_repetition_penalty" not in text.split("## Translation")[0], "MT options stay in their section"
    assert "| wit | cc-by-sa-3.0 | 4 | 3 | 0 | 0 | 0 | 1 |" in text
    assert "WIT's captions are encyclopedic" in text
    assert "This build holds machine-translated captions." in text
