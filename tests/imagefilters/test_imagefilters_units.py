"""The image filters' parts on their own: specs, the pHash dedup, the embedding near-dup index."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("faiss", reason="the image filters need faiss-cpu: pip install 'capbuild[imagefilters]'")

from capbuild.errors import ConfigError
from capbuild.imagefilters import neardup
from capbuild.imagefilters.hashing import HashDedup, hamming_matrix, hash_bytes
from capbuild.imagefilters.neardup import EmbeddingDedup, NearDupIndex, measure_recall
from capbuild.imagefilters.specs import ClipScore, ClipTop, NearDup, PHash, parse_image_filters


def test_specs_parse_and_describe_themselves(tmp_path):
    (tmp_path / "eval" / "shards").mkdir(parents=True)
    specs = [
        "clip_score=0.25:caption_orig",
        "clip_top=0.3:caption_orig",
        "near_dup=0.95",
        "phash=6",
        f"decontaminate_images={tmp_path / 'eval'}:4",
    ]
    parsed = parse_image_filters(specs)
    assert parsed[0] == ClipScore("clip_score", 0.25, "caption_orig")
    assert parsed[1] == ClipTop("clip_top", 0.3, "caption_orig")
    assert parsed[2] == NearDup("near_dup", 0.95) and parsed[3] == PHash("phash", 6)
    assert parsed[4].distance == 4 and parsed[4].eval_out == str(tmp_path / "eval")
    assert [p.describe() for p in parsed] == specs
    assert parse_image_filters([f"decontaminate_images={tmp_path / 'eval'}"])[0].distance == 6
    assert parse_image_filters(["clip_score=0.2"])[0].text == "caption"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("clip_score", "NAME=VALUE"),
        ("clip_score=high", "not a number"),
        ("clip_score=2", r"\[-1, 1\]"),
        ("clip_score=0.2:title", "caption or caption_orig"),
        ("clip_top=0", r"\(0, 1\]"),
        ("near_dup=1.5", r"\(0, 1\]"),
        ("phash=64", "0..63"),
        ("phash=-1", "0..63"),
        ("decontaminate_images=/no/such/build", "not a capbuild build"),
        ("sharpness=3", "unknown image filter"),
    ],
)
def test_bad_specs_say_what_is_accepted(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_image_filters([spec])


def test_mixed_texts_and_repeats_are_refused():
    with pytest.raises(ConfigError, match="same text"):
        parse_image_filters(["clip_score=0.2:caption_orig", "clip_top=0.5"])
    with pytest.raises(ConfigError, match="once"):
        parse_image_filters(["phash=4", "phash=6"])


def greedy_hamming(hashes: np.ndarray, distance: int) -> list[tuple[int, int] | None]:
    """The definition, by brute force: closest earlier kept hash within `distance` (ties: earliest)."""
    matrix = hamming_matrix(hashes, hashes)
    kept: list[int] = []
    verdicts: list[tuple[int, int] | None] = []
    for row in range(len(hashes)):
        close = [(int(matrix[row, k]), k) for k in kept if matrix[row, k] <= distance]
        if close:
            d, k = min(close)
            verdicts.append((k, d))
        else:
            kept.append(row)
            verdicts.append(None)
    return verdicts


def planted_hashes(rng: np.random.Generator, count: int, flips: int) -> np.ndarray:
    """Random hashes, a third of them copies of earlier ones with up to `flips` bits flipped."""
    hashes = rng.integers(0, 256, (count, 8), dtype=np.uint8)
    for row in range(count // 3, count, 3):
        source = hashes[rng.integers(0, row)].copy()
        bits = np.unpackbits(source)
        bits[rng.choice(64, rng.integers(0, flips + 1), replace=False)] ^= 1
        hashes[row] = np.packbits(bits)
    return hashes


@pytest.mark.parametrize("distance", [0, 6, 20])
def test_hash_dedup_is_the_greedy_definition_across_calls(distance, monkeypatch):
    monkeypatch.setattr("capbuild.imagefilters.hashing.BLOCK", 50)  # several blocks per call
    rng = np.random.default_rng(distance)
    hashes = planted_hashes(rng, 600, distance + 2)
    dedup = HashDedup(distance)
    positions = np.arange(len(hashes))
    verdicts = dedup.offer(positions[:250], hashes[:250]) + dedup.offer(positions[250:], hashes[250:])
    expected = greedy_hamming(hashes, distance)
    assert verdicts == expected
    assert 0 < sum(v is not None for v in verdicts) < len(hashes)


def greedy_cosine(vectors: np.ndarray, cosine: float) -> list[tuple[int, float] | None]:
    sims = vectors @ vectors.T
    kept: list[int] = []
    verdicts: list[tuple[int, float] | None] = []
    for row in range(len(vectors)):
        close = [(float(sims[row, k]), k) for k in kept if sims[row, k] >= cosine]
        if close:
            best = max(s for s, _ in close)
            verdicts.append((next(k for s, k in close if s == best), best))
        else:
            kept.append(row)
            verdicts.append(None)
    return verdicts


def planted_vectors(rng: np.random.Generator, count: int, dim: int) -> np.ndarray:
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    for row in range(count // 4, count, 4):
        vectors[row] = vectors[rng.integers(0, row)] + 0.05 * rng.standard_normal(dim)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float16).astype(np.float32)  # as saved


def test_exact_near_dup_is_the_greedy_definition(monkeypatch):
    monkeypatch.setattr(neardup, "BLOCK", 64)
    vectors = planted_vectors(np.random.default_rng(0), 500, 32)
    dedup = EmbeddingDedup(0.95, NearDupIndex(32, len(vectors)))
    verdicts = dedup.offer(np.arange(200), vectors[:200]) + dedup.offer(np.arange(200, 500), vectors[200:])
    expected = greedy_cosine(vectors, 0.95)
    assert [v and v[0] for v in verdicts] == [e and e[0] for e in expected]
    assert all(abs(v[1] - e[1]) < 1e-5 for v, e in zip(verdicts, expected, strict=True) if v and e)
    assert dedup.index.exact and sum(v is not None for v in verdicts) >= 90


def test_approximate_index_past_the_exact_limit_reports_its_recall(monkeypatch):
    monkeypatch.setattr(neardup, "EXACT_LIMIT", 100)
    rng = np.random.default_rng(1)
    vectors = planted_vectors(rng, 2000, 16)
    index = NearDupIndex(16, len(vectors), train_sample=vectors[::2])
    assert not index.exact and index.describe()["index"].startswith("IVF")
    dedup = EmbeddingDedup(0.9, index)
    verdicts = dedup.offer(np.arange(len(vectors)), vectors)
    kept = np.array(dedup.kept)
    report = measure_recall(dedup, lambda: iter([vectors[kept[:700]], vectors[kept[700:]]]), vectors[::20])
    assert report["recall_queries"] == 100 and 0.5 <= report["recall_at_1"] <= 1.0
    expected = greedy_cosine(vectors, 0.9)
    agree = np.mean([(v is None) == (e is None) for v, e in zip(verdicts, expected, strict=True)])
    assert agree > 0.9  # approximate, yet the planted copies are found


def test_loader_workers_default_to_the_cores_the_model_leaves(monkeypatch):
    from types import SimpleNamespace

    import torch

    from capbuild.imagefilters import embed

    on = {name: SimpleNamespace(device=torch.device(name)) for name in ("cpu", "cuda")}
    monkeypatch.setattr(embed, "usable_cores", lambda: 16)
    assert embed.loader_workers(None, [on["cuda"], on["cuda"]]) == 15  # one core feeds the GPUs
    assert embed.loader_workers(None, [on["cpu"]]) == 16  # each loader embeds with a one-thread copy
    assert embed.loader_workers(None, []) == 16  # pHashes only: the main process just collects
    with monkeypatch.context() as where_fork_is_missing:
        where_fork_is_missing.setattr("multiprocessing.get_all_start_methods", lambda: ["spawn"])
        assert embed.loader_workers(None, [on["cpu"]]) == 2  # the model in the main process: its threads
    assert embed.loader_workers(3, [on["cuda"]]) == 3 and embed.loader_workers(0, [on["cpu"]]) == 0
    monkeypatch.setattr(embed, "usable_cores", lambda: 1)
    assert embed.loader_workers(None, [on["cuda"]]) == 1 and embed.loader_workers(None, [on["cpu"]]) == 1
    monkeypatch.setattr(embed, "usable_cores", lambda: 256)
    assert embed.loader_workers(None, [on["cuda"]]) == embed.MAX_DEFAULT_WORKERS


def test_phash_is_imagehash_of_the_thumbnail_and_ignores_resizing():
    imagehash = pytest.importorskip("imagehash", reason="the reference pHash comes with the dev extra")
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF

    from capbuild.imagefilters.hashing import phash_hex, phash_thumbnail
    from tests.imagefilter_data import draw_picture

    pictures = [draw_picture(seed).resize((384, 384), Image.Resampling.BICUBIC) for seed in range(20)]
    hashes = [phash_hex(p) for p in pictures]
    thumbnails = [phash_thumbnail(TF.pil_to_tensor(p)).permute(1, 2, 0).numpy() for p in pictures]
    assert hashes == [str(imagehash.phash(Image.fromarray(t).convert("L"))) for t in thumbnails]
    # the same hash family as imagehash on the full image (which resizes it with Lanczos)
    full_size = hash_bytes([str(imagehash.phash(p)) for p in pictures])
    assert np.diagonal(hamming_matrix(hash_bytes(hashes), full_size)).max() <= 4  # 2 here
    for size in (256, 150, 48):  # the same picture at other sizes
        resized = hash_bytes([phash_hex(p.resize((size, size), Image.Resampling.LANCZOS)) for p in pictures])
        assert (np.diagonal(hamming_matrix(hash_bytes(hashes), resized)) <= 3).all()
    distinct = hamming_matrix(hash_bytes(hashes), hash_bytes(hashes))[~np.eye(len(pictures), dtype=bool)]
    assert distinct.min() > 8


def test_the_pass_hashes_every_decoded_image_and_marks_the_undecodable(tmp_path):
    import pyarrow.parquet as pq

    from capbuild.imagefilters.embed import PassOptions, embed_shards, index_shards
    from capbuild.imagefilters.hashing import phash_hex
    from capbuild.images.decode import decode_rgb
    from capbuild.images.shards import write_samples
    from tests.imagefilter_data import draw_picture, jpeg

    pictures = {f"k{i}": draw_picture(i) for i in range(7)}
    samples = [(key, {"jpg": jpeg(picture), "txt": b"a picture"}) for key, picture in pictures.items()]
    samples[2] = ("k2", {"jpg": b"\xff\xd8 not a jpeg", "txt": b"a picture"})  # mid-batch
    samples[5] = ("k5", {"png": b"", "txt": b"a picture"})
    shard = tmp_path / "shards" / "00000.tar"
    shard.parent.mkdir()
    write_samples(samples, shard)
    folder = tmp_path / "embeddings"
    counts = embed_shards(index_shards([shard]), folder, [], False, PassOptions(4, 0), show_progress=False)
    assert counts["undecodable"] == 2
    saved = pq.read_table(folder / "00000.parquet").to_pydict()
    assert saved["key"] == list(pictures)
    expected = [None if k in ("k2", "k5") else phash_hex(decode_rgb(jpeg(p))) for k, p in pictures.items()]
    assert saved["phash"] == expected


def test_saved_phashes_of_another_method_are_computed_again(tmp_path):
    import json

    import pyarrow.parquet as pq

    from capbuild.imagefilters.embed import METADATA_KEY, PassOptions, embed_shards, index_shards
    from capbuild.images.shards import write_samples
    from tests.imagefilter_data import draw_picture, jpeg

    shard = tmp_path / "shards" / "00000.tar"
    shard.parent.mkdir()
    write_samples([(f"k{i}", {"jpg": jpeg(draw_picture(i)), "txt": b"a picture"}) for i in range(3)], shard)
    folder, options = tmp_path / "embeddings", PassOptions(batch_size=2, workers=0)
    assert embed_shards(index_shards([shard]), folder, [], False, options, show_progress=False)["embedded_shards"] == 1
    saved = folder / "00000.parquet"
    again = embed_shards(index_shards([shard]), folder, [], False, options, show_progress=False)
    assert again == {"reused_shards": 1, "embedded_shards": 0}
    table = pq.read_table(saved)
    meta = json.loads(table.schema.metadata[METADATA_KEY])
    stale = table.replace_schema_metadata({METADATA_KEY: json.dumps({**meta, "phash_method": "older"}).encode()})
    pq.write_table(stale, saved)
    assert embed_shards(index_shards([shard]), folder, [], False, options, show_progress=False)["embedded_shards"] == 1
    assert json.loads(pq.read_schema(saved).metadata[METADATA_KEY])["phash_method"] == meta["phash_method"]


def test_loaders_that_embed_write_what_the_main_process_writes(tmp_path, monkeypatch):
    import multiprocessing
    import os

    import pyarrow.parquet as pq

    from capbuild.imagefilters import embed
    from capbuild.images.shards import write_samples
    from capbuild.models.dual_encoder import load_dual_encoder
    from tests.dual_encoders import save_clip
    from tests.imagefilter_data import draw_picture, jpeg

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("loaders embed only where they can be forked with the model loaded")
    samples = [(f"k{i}", {"jpg": jpeg(draw_picture(i)), "txt": f"picture {i}".encode()}) for i in range(11)]
    samples[4] = ("k4", {"jpg": b"not an image", "txt": b"broken"})
    shard = tmp_path / "00000.tar"
    write_samples(samples, shard)
    encoder = load_dual_encoder(str(save_clip(tmp_path / "clip")), device="cpu")
    assert embed.embeds_in_workers([encoder])
    in_main = embed.embed_shards(
        embed.index_shards([shard]), tmp_path / "main", [encoder], True, embed.PassOptions(3, 0), show_progress=False
    )
    embedded_in = tmp_path / "pids"  # a file: the forked loaders write to it too

    def recording(method):
        original = getattr(type(encoder), method)

        def record(self, inputs):
            with embedded_in.open("a") as pids:
                pids.write(f"{method} {os.getpid()}\n")
            return original(self, inputs)

        return record

    for method in ("encode_images", "encode_texts"):
        monkeypatch.setattr(type(encoder), method, recording(method))
    in_loaders = embed.embed_shards(
        embed.index_shards([shard]), tmp_path / "loaders", [encoder], True, embed.PassOptions(3, 2), show_progress=False
    )
    calls = [line.split() for line in embedded_in.read_text().splitlines()]
    assert str(os.getpid()) not in {pid for _, pid in calls}  # the main process embeds neither images nor captions
    assert sum(method == "encode_images" for method, _ in calls) == 4  # each loader's two batches of <= 3 images
    # and their captions: the loader of 6 samples ends on an empty batch, the loader of 5 on a batch of 2
    assert sum(method == "encode_texts" for method, _ in calls) == 5
    assert in_main == in_loaders == {"reused_shards": 0, "embedded_shards": 1, "undecodable": 1}
    assert pq.read_table(tmp_path / "loaders" / "00000.parquet").equals(
        pq.read_table(tmp_path / "main" / "00000.parquet")
    )


def test_saved_embeddings_are_each_samples_own_image_and_caption(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from capbuild.imagefilters import embed
    from capbuild.images.decode import decode_rgb
    from capbuild.images.shards import write_samples
    from capbuild.models.dual_encoder import load_dual_encoder
    from tests.dual_encoders import save_clip
    from tests.imagefilter_data import draw_picture, jpeg

    monkeypatch.setattr(embed, "CPU_CHUNK", 6)  # a batch of 20 images is embedded in pieces of 6, 6, 6 and 2
    images = [jpeg(draw_picture(i)) for i in range(20)]
    captions = [f"picture {i} of {'many ' * i}things" for i in range(20)]
    shard = tmp_path / "00000.tar"
    write_samples([(f"k{i}", {"jpg": images[i], "txt": captions[i].encode()}) for i in range(20)], shard)
    encoder = load_dual_encoder(str(save_clip(tmp_path / "clip")), device="cpu")
    options = embed.PassOptions(batch_size=20, workers=0, dtype="float32")
    embed.embed_shards(embed.index_shards([shard]), tmp_path / "out", [encoder], False, options, show_progress=False)
    saved = pq.read_table(tmp_path / "out" / "00000.parquet")
    one_by_one = np.concatenate(
        [encoder.encode_images(encoder.image_transform(decode_rgb(image))[None]).numpy() for image in images]
    )
    for column, expected in (
        ("image_embedding", one_by_one),
        ("text_embedding", np.concatenate([encoder.encode_texts([caption]).numpy() for caption in captions])),
    ):
        vectors, valid = embed.matrix(saved[column])
        assert valid.all()
        np.testing.assert_allclose(vectors, expected, atol=1e-4)
        assert (np.argmax(vectors @ expected.T, axis=1) == np.arange(20)).all()  # no row holds another sample's
