"""Fast checks of the cards helpers: shard patterns, weights, licences, size categories."""

from __future__ import annotations

import braceexpand
import pytest

from capbuild.cards.card import license_metadata, md_table, size_category
from capbuild.cards.facts import hf_split_name, shard_pattern
from capbuild.cards.mix import parse_weights
from capbuild.cards.publish import human_size

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
