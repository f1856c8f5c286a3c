import pyarrow as pa
import pytest

from capbuild.table import (
    caption_schema,
    conform,
    make_key,
    make_row,
    read_parts,
    rejected_schema,
    rows_to_table,
    score_fields,
    write_part,
)


def test_keys_are_stable_unique_and_have_no_dot():
    key = make_key("coco", "391895")
    assert key == make_key("coco", "391895")
    assert key != make_key("coco", "391896")
    assert key != make_key("flickr8k", "391895")
    assert "." not in key and len(key) == 16


def test_key_separates_source_from_id():
    assert make_key("ab", "c") != make_key("a", "bc")


def test_make_row_defaults_originals_to_the_caption():
    row = make_row(source="coco", source_id="1", captions=["a cat", "a dog"], lang="en", image_url="file:///x.jpg")
    assert row["caption"] == "a cat"
    assert row["caption_orig"] == "a cat" and row["lang_orig"] == "en"
    assert row["meta"] == "{}"


def test_parts_round_trip(tmp_path):
    rows = [
        make_row(source="coco", source_id=str(i), captions=[f"caption {i}"], lang="it", image_url=None)
        for i in range(5)
    ]
    table = rows_to_table(rows)
    write_part(table.slice(0, 3), tmp_path, 0)
    write_part(table.slice(3), tmp_path, 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert read_parts(tmp_path).to_pylist() == table.to_pylist()


def test_read_parts_of_an_empty_folder_is_an_empty_caption_table(tmp_path):
    assert read_parts(tmp_path).schema == caption_schema()
    assert len(read_parts(tmp_path)) == 0


def test_score_columns_are_appended_in_the_order_and_types_given():
    schema = caption_schema({"propn_ratio": pa.float32(), "word_count": pa.int32()})
    assert schema.names[-2:] == ["propn_ratio", "word_count"]
    assert schema.field("word_count").type == pa.int32()
    assert "captions_orig" in caption_schema().names, "a base column, not a score"
    assert rejected_schema().names[-2:] == ["filter", "filter_value"]
    assert score_fields(rejected_schema({"lang_score": pa.float32()})) == {"lang_score": pa.float32()}
    with pytest.raises(ValueError, match="base columns"):
        caption_schema({"caption": pa.string()})


def test_conform_adds_missing_columns_as_nulls():
    table = pa.table({"key": ["k"], "source": ["s"], "source_id": ["1"]})
    conformed = conform(table, caption_schema({"word_count": pa.int32()}))
    assert conformed.schema == caption_schema({"word_count": pa.int32()})
    assert conformed["word_count"].to_pylist() == [None]
