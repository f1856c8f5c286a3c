"""The WebDataset loaders: shard patterns, sample counts, incomplete samples, captions, augmentation,
tokenisation in workers, mixing of sources, one-pass evaluation reading."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import pytest
import torch
import webdataset as wds
from PIL import Image

from capbuild.train.data import (
    ImageGeometry,
    LoaderOptions,
    TrainCollate,
    count_samples,
    eval_batches,
    expand_shards,
    image_transform,
    is_complete,
    sample_texts,
    train_loader,
)

GEOMETRY = ImageGeometry(size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@pytest.fixture(scope="module")
def tokenizer(towers):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(towers[1])


def test_shard_patterns_expand_ranges_globs_and_folders(train_shards: Path):
    tars = sorted(str(p) for p in train_shards.glob("*.tar"))
    assert len(tars) == 8
    assert expand_shards(str(train_shards / "{00000..00007}.tar")) == tars
    assert expand_shards(str(train_shards / "*.tar")) == tars
    assert expand_shards(str(train_shards)) == tars
    with pytest.raises(FileNotFoundError, match=r"00008\.tar"):
        expand_shards(str(train_shards / "{00000..00008}.tar"))


def test_sample_count_from_sizes_json_or_by_listing_the_tars(train_shards: Path, tmp_path: Path):
    tars = expand_shards(str(train_shards))
    assert count_samples(tars) == 512
    copy = tmp_path / "00000.tar"
    copy.write_bytes(Path(tars[0]).read_bytes())  # no sizes.json beside it
    assert count_samples([str(copy)]) == 64


def _write(path: Path, samples: list[dict]) -> str:
    with wds.TarWriter(str(path)) as sink:
        for sample in samples:
            sink.write(sample)
    return str(path)


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_incomplete_samples_and_the_end_of_shard_marker_are_skipped(tmp_path: Path):
    assert not is_complete({})  # webdataset >= 0.2.96 yields {} at the end of every shard
    assert not is_complete({"__key__": "a", "txt": "solo testo"})
    assert not is_complete({"__key__": "b", "jpg": b"..."})
    meta = json.dumps({"captions": ["un cerchio rosso"]})
    shard = _write(
        tmp_path / "00000.tar",
        [
            {"__key__": "good1", "jpg": _jpeg(), "txt": "un cerchio rosso", "json": meta},
            {"__key__": "notext", "jpg": _jpeg()},
            {"__key__": "noimage", "txt": "senza immagine", "json": meta},
            {"__key__": "good2", "jpg": _jpeg(), "json": json.dumps({"caption": "un quadrato", "captions": []})},
        ],
    )
    keys = [k for batch in eval_batches([shard], image_transform(GEOMETRY, False), 8, 0) for k in batch["key"]]
    assert sorted(keys) == ["good1", "good2"]


def test_sample_texts_keep_every_caption_and_the_original_only_when_translated():
    translated = {
        "txt": "un cane",
        "json": {"captions": ["un cane", "un cucciolo"], "caption_orig": "a dog", "lang": "it", "lang_orig": "en"},
    }
    assert sample_texts(translated) == ("un cane", ["un cane", "un cucciolo"], "a dog")
    native = {
        "txt": "un gatto",
        "json": {"captions": ["un gatto"], "caption_orig": "un gatto", "lang": "it", "lang_orig": "it"},
    }
    assert sample_texts(native) == ("un gatto", ["un gatto"], None)
    cleaned = {"txt": "Roma", "json": {"captions": ["Roma"], "caption_orig": "Roma ", "lang": "it", "lang_orig": "it"}}
    assert sample_texts(cleaned)[2] is None  # same language: a cleaned caption is not a translation
    bare = {"txt": "una casa"}
    assert sample_texts(bare) == ("una casa", ["una casa"], None)


def test_augmentation_changes_pixels_but_not_the_shape():
    image = Image.new("RGB", (40, 40), (30, 60, 220))
    image.paste((220, 30, 30), (10, 10, 30, 30))
    plain = image_transform(GEOMETRY, augment=False)
    augmented = image_transform(GEOMETRY, augment=True)
    torch.manual_seed(0)
    assert torch.equal(plain(image), plain(image))
    outputs = [augmented(image) for _ in range(4)]
    assert all(o.shape == (3, 32, 32) and o.dtype == torch.float32 for o in outputs)
    assert not all(torch.equal(outputs[0], o) for o in outputs[1:])


def test_train_batches_are_tokenised_in_workers_with_a_random_caption_each(train_shards: Path, tokenizer):
    options = LoaderOptions(batch_size=16, workers=2, seed=0, shuffle_buffer=50)
    batches = train_loader(
        [expand_shards(str(train_shards))], image_transform(GEOMETRY, True), TrainCollate(tokenizer, 32), options
    )
    seen = Counter()
    for _ in range(12):
        batch = next(batches)
        assert batch["pixel_values"].shape == (16, 3, 32, 32)
        assert batch["text"]["input_ids"].shape[0] == 16
        for text in tokenizer.batch_decode(batch["text"]["input_ids"], skip_special_tokens=True):
            seen[text.split()[0]] += 1
    # each image has three phrasings ("un ...", "<shape> ...,", "c ' e ..."): all of them are drawn
    assert {"un", "c"} <= set(seen)
    assert any(word in seen for word in ("cerchio", "quadrato", "triangolo"))


def test_distillation_batches_pair_caption_and_original_with_a_mask(tokenizer):
    collate = TrainCollate(tokenizer, 32, teacher_tokenizer=tokenizer)
    pixels = torch.zeros(3, 32, 32)
    batch = collate(
        [
            {
                "pixel_values": pixels,
                "text": "un cerchio",
                "caption": "un cerchio rosso",
                "caption_orig": "a red circle",
            },
            {"pixel_values": pixels, "text": "un quadrato", "caption": "un quadrato", "caption_orig": None},
        ]
    )
    assert batch["distill_mask"].tolist() == [True, False]
    assert tokenizer.decode(batch["distill_text"]["input_ids"][0], skip_special_tokens=True) == "un cerchio rosso"
    assert batch["teacher_text"]["input_ids"].shape[0] == 2


def _fingerprints(pixel_batches) -> Counter:
    return Counter(hash(pixels.numpy().tobytes()) for batch in pixel_batches for pixels in batch)


def test_sources_are_mixed_by_weight(tmp_path: Path, tokenizer):
    from synthetic import write_shards

    first = write_shards(tmp_path / "a", 64, seed=3, per_shard=32)
    second = write_shards(tmp_path / "b", 64, seed=4, per_shard=32)
    transform = image_transform(GEOMETRY, False)
    from_first = set(_fingerprints(b["pixel_values"] for b in eval_batches(first, transform, 64, 0)))
    options = LoaderOptions(batch_size=20, workers=0, seed=0, shuffle_buffer=10, weights=(3.0, 1.0))
    batches = train_loader([first, second], transform, TrainCollate(tokenizer, 32), options)
    drawn = _fingerprints(next(batches)["pixel_values"] for _ in range(10))
    share = sum(n for print_, n in drawn.items() if print_ in from_first) / 200
    assert 0.6 < share < 0.9  # 3:1 weights -> about 0.75 from the first source


def test_no_resample_reads_every_sample_once_per_epoch(train_shards: Path, tokenizer):
    urls = expand_shards(str(train_shards))
    transform = image_transform(GEOMETRY, False)
    options = LoaderOptions(batch_size=64, workers=0, seed=0, resample=False, shuffle_buffer=1)
    batches = train_loader([urls], transform, TrainCollate(tokenizer, 32), options)
    epoch = _fingerprints(next(batches)["pixel_values"] for _ in range(8))
    assert epoch == _fingerprints(b["pixel_values"] for b in eval_batches(urls, transform, 64, 0))
    assert next(batches)["pixel_values"].shape[0] == 64  # and the stream goes on with the next epoch


def test_eval_reading_visits_every_sample_once_with_workers(val_shards: Path):
    batches = list(eval_batches(expand_shards(str(val_shards)), image_transform(GEOMETRY, False), 10, 2))
    keys = [k for b in batches for k in b["key"]]
    assert len(keys) == len(set(keys)) == 36
    assert all(len(c) == 3 for b in batches for c in b["captions"])
    assert {label for b in batches for label in b["label"]} == {0, 1, 2}
