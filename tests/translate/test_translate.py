"""Machine translation: convert, the cached batched translator, NLLB prefixes, the degenerate
filter, and builds with --translate (tiny random-weight models built on the fly)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from extras import require_extra
from typer.testing import CliRunner

from capbuild.cli import app
from capbuild.stages.text.records import plan_specs, reports_by_spec
from capbuild.table import read_parts
from capbuild.translate import DecodeOptions, Translator
from capbuild.translate.checks import judge, verdict
from capbuild.translate.degenerate import degenerate_reason, is_loop
from capbuild.translate.engine import cpu_thread_split, token_batches
from capbuild.translate.langcodes import m2m100_code, nllb_code
from capbuild.translate.model import fingerprint_model, read_model_info
from tests.translate_models import build_marian, build_nllb, fixture_captions

require_extra("translate")

ctranslate2 = pytest.importorskip("ctranslate2", reason="the translate extra is not installed")

runner = CliRunner()


@pytest.fixture(scope="session")
def marian_ct2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MarianMT converted with `capbuild translate convert`."""
    hf = build_marian(tmp_path_factory.mktemp("marian-hf"))
    out = tmp_path_factory.mktemp("marian") / "ct2"
    result = runner.invoke(app, ["translate", "convert", "--model", str(hf), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def nllb_ct2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from capbuild.translate.convert import convert_model

    hf = build_nllb(tmp_path_factory.mktemp("nllb-hf"))
    out = tmp_path_factory.mktemp("nllb") / "ct2"
    convert_model(str(hf), out)
    return out


def direct_translations(model: Path, translator: Translator, texts: list[str], src: str, tgt: str) -> list[str]:
    """What ctranslate2.Translator.translate_batch gives on the same tokens, one call per length bound."""
    direct = ctranslate2.Translator(str(model), device="cpu", compute_type="int8")
    tokens = translator.tokenizer.encode(texts, src)
    prefix = translator.tokenizer.target_prefix(tgt)
    outputs = [""] * len(texts)
    bounds = [translator.decode.max_decoding_length(len(t)) for t in tokens]
    for bound in sorted(set(bounds)):
        group = [i for i, b in enumerate(bounds) if b == bound]
        results = direct.translate_batch(
            [tokens[i] for i in group],
            target_prefix=[prefix] * len(group) if prefix else None,
            max_decoding_length=bound,
            beam_size=1,
        )
        for i, result in zip(group, results, strict=True):
            outputs[i] = translator.tokenizer.decode(result.hypotheses[0], prefix)
    return outputs


def test_convert_writes_model_tokenizer_and_info(marian_ct2: Path) -> None:
    for name in ("model.bin", "source.spm", "target.spm", "vocab.json", "tokenizer_config.json", "capbuild-mt.json"):
        assert (marian_ct2 / name).is_file(), name
    info = read_model_info(marian_ct2)
    assert info.family == "marian"
    assert info.quantization == "int8"
    assert info.fingerprint == fingerprint_model(marian_ct2)


def test_convert_refuses_a_non_empty_folder(marian_ct2: Path, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["translate", "convert", "--model", str(marian_ct2), "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "--force" in result.output


def test_every_caption_gets_one_translation_in_order_equal_to_direct_ct2(marian_ct2: Path, tmp_path: Path) -> None:
    captions = fixture_captions(60, seed=1)
    texts = [*captions, captions[3], "  " + captions[5].replace(" ", "   ") + " ", ""]
    mt = Translator(marian_ct2, cache_dir=tmp_path, retry_loops=False, progress=False)
    out = mt.translate(texts, "en", "it")
    assert len(out) == len(texts)
    assert out[-1] == ""
    assert out[len(captions)] == out[3]
    assert out[len(captions) + 1] == out[5]
    assert mt.stats["unique"] == len(captions)
    assert mt.engine.sentences == len(captions)
    assert out[: len(captions)] == direct_translations(marian_ct2, mt, captions, "en", "it")


def test_second_run_hits_the_cache_for_every_caption(marian_ct2: Path, tmp_path: Path) -> None:
    captions = fixture_captions(40, seed=2)
    first = Translator(marian_ct2, cache_dir=tmp_path, progress=False).translate(captions, "en", "it")
    again = Translator(marian_ct2, cache_dir=tmp_path, progress=False)
    assert again.translate(captions, "en", "it") == first
    assert again.stats["cache_hits"] == len(set(captions))
    assert "engine" not in again.__dict__  # the model was never even loaded
    other_options = Translator(marian_ct2, cache_dir=tmp_path, decode=DecodeOptions(beam_size=2), progress=False)
    other_options.translate(captions[:5], "en", "it")
    assert other_options.stats["cache_hits"] == 0


def test_an_interrupted_translation_resumes_from_the_cache(marian_ct2: Path, tmp_path: Path) -> None:
    captions = fixture_captions(30, seed=3)
    Translator(marian_ct2, cache_dir=tmp_path, retry_loops=False, progress=False).translate(captions[:12], "en", "it")
    resumed = Translator(marian_ct2, cache_dir=tmp_path, retry_loops=False, progress=False)
    resumed.translate(captions, "en", "it")
    assert resumed.stats["cache_hits"] == 12
    assert resumed.engine.sentences == 18


def test_looping_outputs_are_retried_with_repeat_blocking(marian_ct2: Path, tmp_path: Path) -> None:
    captions = fixture_captions(20, seed=4)
    plain = Translator(marian_ct2, cache_dir=False, retry_loops=False, progress=False).translate(captions, "en", "it")
    looping = sum(is_loop(t) for t in plain)
    assert looping  # random weights loop
    retried = Translator(marian_ct2, cache_dir=False, progress=False)
    out = retried.translate(captions, "en", "it")
    assert retried.stats["loop_retries"] == looping
    assert sum(is_loop(t) for t in out) < looping


def test_long_multi_sentence_input_is_translated_sentence_by_sentence(marian_ct2: Path) -> None:
    long_text = " ".join(fixture_captions(12, seed=5))
    mt = Translator(marian_ct2, cache_dir=False, retry_loops=False, progress=False)
    [out] = mt.translate([long_text], "en", "it")
    assert mt.stats["split_inputs"] == 1
    assert mt.stats["model_sentences"] == 12
    assert out


def test_nllb_models_get_language_tokens(nllb_ct2: Path) -> None:
    mt = Translator(nllb_ct2, cache_dir=False, retry_loops=False, progress=False)
    assert mt.info.family == "nllb"
    [source] = mt.tokenizer.encode(["A dog."], "en")
    assert source[0] == "eng_Latn" and source[-1] == "</s>"
    [tokens] = mt.engine.translate([source], mt.tokenizer.target_prefix("it"), mt.decode)
    assert tokens[0] == "ita_Latn"
    captions = fixture_captions(8, seed=6)
    assert mt.translate(captions, "en", "it") == direct_translations(nllb_ct2, mt, captions, "en", "it")
    with pytest.raises(ValueError, match="no NLLB-200 code"):
        mt.translate(["x"], "en", "xx")


def test_language_code_maps() -> None:
    assert [nllb_code(c) for c in ("it", "ar", "id", "az")] == ["ita_Latn", "arb_Arab", "ind_Latn", "azj_Latn"]
    assert nllb_code("zho_Hant") == "zho_Hant"
    assert m2m100_code("ar") == "__ar__"


def test_degenerate_reasons() -> None:
    assert degenerate_reason("A dog on a beach.", "Un cane su una spiaggia.") == ""
    assert degenerate_reason("A dog.", "  ") == "empty"
    assert degenerate_reason("A dog on a beach.", "cane cane cane cane cane").startswith("loop")
    assert degenerate_reason("A dog on a beach.", "il cane il cane il cane il cane").startswith("loop")
    assert degenerate_reason("A dog.", "hhhhhhhhhhhh").startswith("loop")
    assert degenerate_reason("A dog running on a long sandy beach.", "Cane.").startswith("length_ratio")
    assert degenerate_reason("Dog.", "Cane.") == ""


def test_token_batches_are_sorted_and_within_budget() -> None:
    lengths = [5, 30, 7, 12, 30, 2, 9, 50]
    batches = token_batches(lengths, batch_tokens=40)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)
    assert all(len(b) * max(lengths[i] for i in b) <= 40 or len(b) == 1 for b in batches)
    assert cpu_thread_split(2) == (1, 2) and cpu_thread_split(16) == (4, 4)


def write_coco(folder: Path, captions: list[str], per_image: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    count = len(captions) // per_image
    data = {
        "images": [
            {"id": i, "file_name": f"{i:012d}.jpg", "coco_url": f"http://127.0.0.1/{i}.jpg"} for i in range(count)
        ],
        "annotations": [
            {"id": n, "image_id": n // per_image, "caption": c} for n, c in enumerate(captions[: count * per_image])
        ],
    }
    path = folder / "captions_val2017.json"
    path.write_text(json.dumps(data))
    return path


def build_rows(out: Path) -> dict[str, dict]:
    rows = {r["key"]: r for r in read_parts(out / "captions").to_pylist()}
    if (out / "rejected").is_dir():
        rows.update({r["key"]: r for r in read_parts(out / "rejected").to_pylist()})
    return rows


@pytest.mark.slow
def test_coco_build_with_translate(marian_ct2: Path, tmp_path: Path) -> None:
    captions = fixture_captions(30, seed=7)
    captions[3] = captions[0]  # a repeated caption is translated once
    coco = write_coco(tmp_path / "coco", captions)
    cache, out = tmp_path / "cache", tmp_path / "out"
    args = ["coco", "--input", str(coco), "--lang", "it", "--translate", "--mt-model", str(marian_ct2)]
    args += ["--mt-cache", str(cache), "--no-images", "--filter", "len=1..40"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output

    rows = build_rows(out)
    assert len(rows) == 10
    mt = Translator(marian_ct2, cache_dir=False, progress=False)
    by_source = {r["source_id"]: r for r in rows.values()}
    for image in range(10):
        row = by_source[str(image)]
        sources = captions[image * 3 : image * 3 + 3]
        assert (row["lang"], row["lang_orig"]) == ("it", "en")
        assert row["caption_orig"] == sources[0]
        assert row["captions_orig"] == sources
        expected = mt.translate(sources, "en", "it")
        assert row["caption"] == expected[0]
        assert set(row["captions"]) <= set(expected)
        if row.get("filter"):
            assert row["filter"] == "mt_degenerate"
            assert row["filter_value"] == verdict(*judge(row["caption_orig"], row["caption"], "it"))
    kept = read_parts(out / "captions")
    assert len(kept)  # not every random-weight output is degenerate
    assert pq.read_schema(sorted((out / "captions").glob("*.parquet"))[0]).field("captions_orig")

    manifest = json.loads((out / "manifest.json").read_text())
    info = read_model_info(marian_ct2)
    filters = plan_specs(manifest)
    assert filters[-2:] == [f"translate=it model={info.name}@{info.fingerprint}", "mt_degenerate"]
    assert filters.index("len=1..40") < filters.index(filters[-2])  # the user's filters run first
    assert [s["kind"] for s in manifest["config"]["plan"][-2:]] == ["rewriter", "filter"]
    report = reports_by_spec(manifest["counts"]["text"])[filters[-2]]
    assert report["model_fingerprint"] == info.fingerprint
    assert report["unique"] == 29 and report["cache_hits"] == 0

    again = runner.invoke(app, [*args, "--out", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    report = reports_by_spec(json.loads((tmp_path / "again" / "manifest.json").read_text())["counts"]["text"])[
        filters[-2]
    ]
    assert report["cache_hits"] == 29 and report.get("model_sentences", 0) == 0

    rerun = runner.invoke(
        app, ["translate", "run", str(out), "--mt-model", str(marian_ct2), "--mt-cache", str(cache),
              "--mt-no-repeat-ngram", "2"],
    )  # fmt: skip
    assert rerun.exit_code == 0, rerun.output
    rerun_rows = build_rows(out)
    assert rerun_rows.keys() == rows.keys()
    blocked = Translator(marian_ct2, cache_dir=False, decode=DecodeOptions(no_repeat_ngram_size=2), progress=False)
    for row in rerun_rows.values():
        assert row["caption_orig"] == rows[row["key"]]["caption_orig"]
        assert row["caption"] == blocked.translate([row["caption_orig"]], "en", "it")[0]
    rerun_manifest = json.loads((out / "manifest.json").read_text())
    assert rerun_manifest["fingerprint"] != manifest["fingerprint"]
    assert rerun_manifest["stages"]["images"]["done"] is False


def test_translate_needs_a_model_and_another_language(tmp_path: Path) -> None:
    coco = write_coco(tmp_path / "coco", fixture_captions(6))
    base = ["coco", "--input", str(coco), "--no-images", "--out", str(tmp_path / "out"), "--translate"]
    result = runner.invoke(app, [*base, "--lang", "it"])
    assert result.exit_code == 2 and "--mt-model" in result.output
    result = runner.invoke(app, [*base, "--lang", "en", "--mt-model", str(tmp_path)])
    assert result.exit_code == 2 and "--src-lang" in result.output


@pytest.mark.slow
def test_translate_run_then_the_build_command_again_makes_the_shards(marian_ct2: Path, tmp_path: Path) -> None:
    from pos_fixtures import write_french_coco

    captions_file, images = write_french_coco(tmp_path / "input", fixture_captions(8, seed=7))
    out, cache = tmp_path / "out", str(tmp_path / "cache")
    build = ["coco", "--input", str(captions_file), "--images", str(images), "--lang", "it", "--translate",
             "--mt-model", str(marian_ct2), "--mt-cache", cache, "--image-size", "32", "--shard-size", "4",
             "--threads", "2", "--out", str(out)]  # fmt: skip
    first = runner.invoke(app, build)
    assert first.exit_code == 0, first.output
    fingerprint = json.loads((out / "manifest.json").read_text())["fingerprint"]

    rerun = runner.invoke(
        app, ["translate", "run", str(out), "--mt-model", str(marian_ct2), "--beam-size", "4", "--mt-cache", cache,
              "--mt-batch-tokens", "512", "--mt-devices", "cpu"],
    )  # fmt: skip
    assert rerun.exit_code == 0, rerun.output
    assert not (out / "shards").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    translate = next(step for step in manifest["config"]["plan"] if step["name"] == "translate")
    assert translate["options"]["beam_size"] == 4 and "mt_batch_tokens" not in translate["options"]
    assert manifest["fingerprint"] != fingerprint and fingerprint in manifest["accepts"]

    again = runner.invoke(app, build)  # the build command as first given continues the build
    assert again.exit_code == 0, again.output
    assert sorted((out / "shards").glob("*.tar")), "the images stage ran on the re-translated table"
    beam = Translator(marian_ct2, cache_dir=False, decode=DecodeOptions(beam_size=4), progress=False)
    kept = read_parts(out / "captions").to_pylist()
    assert kept and all(r["caption"] == beam.translate([r["caption_orig"]], "en", "it")[0] for r in kept)
    with_new_options = runner.invoke(app, [*build, "--beam-size", "4"])  # and so does the command with them
    assert with_new_options.exit_code == 0, with_new_options.output
