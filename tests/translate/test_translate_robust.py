"""Translation that no caption can stop: the model's position limits, a model that raises on one
caption, the error budget, the MT output checks on real Arabic / Russian / Chinese text, and the
sqlite cache under concurrent and killed writers."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from capbuild.cli import app
from capbuild.errors import StepError
from capbuild.stages.text.records import reports_by_spec
from capbuild.table import read_parts
from capbuild.translate.cache import TranslationCache
from capbuild.translate.checks import (
    judge,
    unbalanced_marks,
    unbalanced_quotes,
    untranslated,
    wrong_script,
)
from capbuild.translate.model import read_model_limits
from tests.translate_models import build_marian, fixture_captions

runner = CliRunner()

# A WIT-like reference description (English Wikipedia style), 2,000 characters.
WIT_DESCRIPTION = (
    "The Palazzo Vecchio is the town hall of Florence, Italy. It overlooks the Piazza della Signoria, which "
    "holds a copy of Michelangelo's David statue, and the gallery of statues in the adjacent Loggia dei Lanzi. "
    "Originally called the Palazzo della Signoria, after the Signoria of Florence, the ruling body of the "
    "Republic of Florence, it was also given several other names: Palazzo del Popolo, Palazzo dei Priori, and "
    "Palazzo Ducale, in accordance with the varying use of the palace during its long history. The building "
    "acquired its current name when the Medici duke's residence was moved across the Arno River to the "
    "Palazzo Pitti. It is linked to the Uffizi Gallery and the Palazzo Pitti through the Vasari Corridor. "
    "In 1299, the commune and people of Florence decided to build a palace that would be worthy of the "
    "city's importance, and that would be more secure in times of turbulence for the safety of the "
    "magistrates. Arnolfo di Cambio, the architect of the Duomo and the Santa Croce church, began construction "
    "upon the ruins of the Palazzo dei Fanti and Palazzo dell'Esecutore di Giustizia, once owned by the "
    "Uberti family, exiled from Florence and declared Ghibelline heretics. The massive, cuboid building is "
    "crowned with crenellated battlements, supported by small arches and corbels, and its simple tower, with "
    "the old clock and its bells, rises above the square as one of the most recognisable silhouettes of the "
    "city, whose bells were rung to call the citizens to meetings of the parliament or to warn them of fires, "
    "floods and enemy attacks, over a span of more than seven hundred years of the city's turbulent history "
    "and its many changes of government, from the republic to the grand duchy and the kingdom of Italy today."
)[:2000]


# 40 words of random letters, no sentence end: one sentence of far more than 127 subwords.
_rng = random.Random(0)
NONSENSE = " ".join("".join(_rng.choice("bcdfghklmpqvwxz") for _ in range(9)) for _ in range(40))


# --- the MT output checks, on real strings -------------------------------------------------------


def test_wrong_script_counts_letters_outside_the_target_script() -> None:
    source = "A man riding a red motorcycle down the street."
    assert wrong_script(source, "رجل يركب دراجة نارية حمراء في الشارع.", "ar") == ""
    assert wrong_script(source, "Мужчина едет на красном мотоцикле по улице.", "ru") == ""
    assert wrong_script(source, "一个男人骑着红色摩托车在街上行驶。", "zh") == ""
    assert wrong_script(source, "男性が赤いバイクに乗って通りを走っている。", "ja") == ""  # kanji + kana
    assert wrong_script(source, "A man riding a red motorcycle down the street.", "ar") == ""  # all source words
    assert wrong_script(source, "Un uomo guida una moto rossa per strada.", "ar") == "1.00 Latin"
    assert wrong_script(source, "Мужчина едет на красном мотоцикле.", "ar") == "1.00 Cyrillic"
    assert wrong_script(source, "男人骑着红色摩托车。", "ru") == "1.00 Han"
    assert wrong_script(source, "Un uomo guida una moto rossa.", "it") == ""  # Latin targets are not judged
    assert wrong_script(source, "Un uomo guida una moto rossa.", "xx") == ""  # nor unknown ones


def test_latin_words_of_the_source_do_not_count_against_the_output() -> None:
    source = "A Yamaha motorcycle parked next to a BMW car on Oxford Street."
    output = "دراجة نارية Yamaha متوقفة بجانب سيارة BMW في شارع Oxford Street."
    assert wrong_script(source, output, "ar") == ""
    leaked = "دراجة Yamaha parked next to a BMW car"  # the model copied the rest of the sentence
    assert wrong_script(source, leaked, "ar") == ""  # every Latin word is from the source: not counted
    assert wrong_script("A Yamaha motorcycle.", "Yamaha motorcycle bike parked street town", "ar") == "1.00 Latin"
    assert wrong_script("Два кота.", "Два кота sitting on the sofa together.", "ru", 0.5) == "0.77 Latin"
    assert wrong_script("Два кота.", "Два кота sitting on the sofa together.", "ru", 0.9) == ""


def test_unbalanced_quotes_flag_marks_the_output_leaves_open() -> None:
    assert unbalanced_quotes('A sign reading "stop".', "لافتة مكتوب عليها «قف».") == ""
    assert unbalanced_quotes('A sign reading "stop".', "لافتة مكتوب عليها «قف.") == "«"
    assert unbalanced_quotes("A sign reading stop.", "Знак с надписью „стоп.") == "„"  # noqa: RUF001
    assert unbalanced_quotes("A sign reading stop.", "Знак с надписью „стоп“.") == ""  # noqa: RUF001
    assert unbalanced_quotes("A cat (black) on a mat.", "一只猫（黑色）在垫子上。") == ""  # noqa: RUF001
    assert unbalanced_quotes("A cat (black) on a mat.", "一只猫（黑色在垫子上。") == "（"  # noqa: RUF001
    assert unbalanced_quotes("A cat (black) on a mat.", "一只猫(黑色在垫子上。") == "("
    assert unbalanced_quotes("A cat on a mat.", "Un gatto [nero su un tappeto.") == "["
    assert unbalanced_quotes("A cat on a mat.", 'Un gatto "nero su un tappeto.') == '"'
    assert unbalanced_quotes("A (cat on a mat.", "Un (gatto su un tappeto.") == ""  # the source was unbalanced too
    assert unbalanced_marks("»Katze« und (Hund)") == []  # »…« is balanced too


def test_untranslated_is_the_source_copied() -> None:
    assert untranslated("A dog on the beach.", "a dog on the beach")
    assert untranslated("A dog on the beach.", "A  dog on the beach!")
    assert not untranslated("A dog on the beach.", "كلب على الشاطئ.")
    assert not untranslated("1990", "1990")  # no letters: may translate to itself


def test_judge_names_the_first_failing_check() -> None:
    src = "Two cats sleeping on a red sofa."
    assert judge(src, "قطتان نائمتان على أريكة حمراء.", "ar") == ("", "")
    assert judge(src, "", "ar") == ("empty", "")
    assert judge(src, "قطة قطة قطة قطة قطة", "ar")[0] == "loop"
    assert judge(src, src, "ar") == ("untranslated", "")
    assert judge(src, "Due gatti che dormono su un divano rosso.", "ar") == ("wrong_script", "1.00 Latin")
    assert judge(src, "«قطتان نائمتان على أريكة حمراء.", "ar") == ("unbalanced_quotes", "«")


# --- the model's limits ---------------------------------------------------------------------------

ctranslate2 = pytest.importorskip("ctranslate2", reason="the translate extra is not installed")


@pytest.fixture(scope="module")
def marian128(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny MarianMT with a 128-entry position table, converted with capbuild."""
    from capbuild.translate.convert import convert_model

    out = tmp_path_factory.mktemp("marian128") / "ct2"
    convert_model(str(build_marian(tmp_path_factory.mktemp("marian128-hf"), max_positions=128)), out)
    return out


def test_limits_come_from_the_position_tables_or_config(marian128: Path, tmp_path: Path) -> None:
    from capbuild.translate.model import ModelLimits

    assert read_model_limits(marian128) == ModelLimits(source=128, target=128)
    (tmp_path / "model.bin").write_bytes((marian128 / "model.bin").read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({"max_source_positions": 64, "max_target_positions": 100}))
    assert read_model_limits(tmp_path) == ModelLimits(source=64, target=100)
    (tmp_path / "model.bin").write_bytes(b"not a model")
    (tmp_path / "config.json").write_text("{}")
    assert read_model_limits(tmp_path) == ModelLimits()


def test_long_inputs_are_clamped_split_or_rejected_never_raised(marian128: Path) -> None:
    from capbuild.translate import Translator

    mt = Translator(marian128, cache_dir=False, retry_loops=False, progress=False)
    assert mt.source_limit("en") == 127  # 128 positions less </s>
    long_word = NONSENSE  # one sentence of 40 words, each of several subwords
    texts = [*fixture_captions(6, seed=8), long_word, WIT_DESCRIPTION]
    outcomes = mt.translate_outcomes(texts, "en", "it")
    assert [o.ok for o in outcomes[:6]] == [True] * 6
    assert outcomes[6].reason == "mt_too_long" and "> the model's 127" in outcomes[6].detail
    assert outcomes[7].ok or outcomes[7].reason == "mt_too_long"
    # Random weights never emit </s>: every output ran to its bound, at most the 128 positions.
    [tokens] = mt.engine.translate(mt.tokenizer.encode([" ".join(fixture_captions(8, seed=9))], "en"), None, mt.decode)
    assert len(tokens) == 128
    assert mt.translate([long_word], "en", "it") == [""]


# --- a model that raises on one caption -------------------------------------------------------------


class RaisingTranslator:
    """The real ctranslate2.Translator, except that any batch holding `poison` raises (the one stub:
    a model error cannot be provoked on demand). `on_result` raises from the future instead."""

    def __init__(self, inner: object, poison: list[str], on_result: bool = False) -> None:
        self.inner, self.poison, self.on_result = inner, poison, on_result
        self.calls = 0

    def translate_batch(self, sources: list[list[str]], **options: object) -> list[object]:
        self.calls += 1
        if self.poison in sources:
            if not self.on_result:
                raise RuntimeError("injected model failure")
            return [_FailingFuture() for _ in sources] if options.get("asynchronous") else self._raise()
        return self.inner.translate_batch(sources, **options)

    def _raise(self) -> list[object]:
        raise RuntimeError("injected model failure")


class _FailingFuture:
    def result(self) -> object:
        raise RuntimeError("injected model failure")


@pytest.mark.parametrize("on_result", [False, True], ids=["raises-on-call", "raises-on-result"])
def test_a_caption_the_model_raises_on_is_the_only_one_lost(marian128: Path, tmp_path: Path, on_result: bool) -> None:
    from capbuild.translate import Translator

    captions = fixture_captions(30, seed=10)
    reference = Translator(marian128, cache_dir=False, progress=False).translate(captions, "en", "it")
    mt = Translator(marian128, cache_dir=tmp_path, progress=False)
    poison = mt.tokenizer.encode([captions[7]], "en")[0]
    mt.engine.translator = RaisingTranslator(mt.engine.translator, poison, on_result)
    outcomes = mt.translate_outcomes(captions, "en", "it")
    assert [o.reason for o in outcomes] == ["mt_error" if i == 7 else "" for i in range(30)]
    assert outcomes[7].detail == "RuntimeError: injected model failure"
    assert [o.text for i, o in enumerate(outcomes) if i != 7] == [t for i, t in enumerate(reference) if i != 7]
    assert mt.stats["mt_error"] == 1
    again = Translator(marian128, cache_dir=tmp_path, progress=False)
    again.translate(captions, "en", "it")
    assert again.stats["cache_hits"] == 29  # the failure was not cached; every translation was


def _rows(captions: list[list[str]]) -> pa.Table:
    count = len(captions)
    return pa.table(
        {
            "key": [f"k{i}" for i in range(count)],
            "caption": [c[0] for c in captions],
            "captions": captions,
            "lang": ["en"] * count,
            "caption_orig": [None] * count,
            "lang_orig": [None] * count,
        }
    )


def test_the_translate_step_rejects_failed_rows_and_keeps_to_its_error_budget(marian128: Path, tmp_path: Path) -> None:
    from capbuild.translate.filters import TranslateFilter
    from capbuild.translate.steps import Translate

    captions = fixture_captions(40, seed=11)
    rows = [[captions[i], captions[i + 20]] for i in range(20)]
    rows[4][0] = NONSENSE  # too long for the model
    config = Translate("it", str(marian128), mt_cache=str(tmp_path), mt_progress=False, mt_devices="cpu")
    options = config.translator_options()
    step = TranslateFilter(marian128, "it", options, max_errors=0.1)
    poison = step.translator.tokenizer.encode([rows[9][0]], "en")[0]
    step.translator.engine.translator = RaisingTranslator(step.translator.engine.translator, poison)
    result = step.apply(_rows(rows))
    expected = ["mt_too_long" if i == 4 else "mt_error" if i == 9 else "" for i in range(20)]
    assert [v.split(":")[0] for v in result.values] == expected
    assert result.keep == [i not in (4, 9) for i in range(20)]
    assert result.values[9] == "mt_error: RuntimeError: injected model failure"
    assert result.table["caption_orig"].to_pylist()[9] == rows[9][0]
    report = step.report()
    assert (report["mt_too_long"], report["mt_error"], report["rows_translated"]) == (1, 1, 20)

    strict = TranslateFilter(marian128, "it", options, max_errors=0.01)
    strict.translator.engine.translator = RaisingTranslator(strict.translator.engine.translator, poison)
    fresh = [[c[0] + " again", c[1]] for c in rows]
    poison_again = strict.translator.tokenizer.encode([fresh[9][0]], "en")[0]
    strict.translator.engine.translator.poison = poison_again
    with pytest.raises(StepError, match=r"failed on 1 of 40 captions .*--mt-max-errors 0.01.*again"):
        strict.apply(_rows(fresh))
    resumed = TranslateFilter(marian128, "it", options)
    resumed.apply(_rows(fresh))
    assert resumed.translator.stats["cache_hits"] == 38  # all but the failure and the too-long one


# --- a whole build with the 128-position model on real COCO captions ----------------------------------


@pytest.mark.slow
def test_a_build_with_a_128_position_model_completes_with_every_row_accounted_for(
    marian128: Path, realdata: Path, tmp_path: Path
) -> None:
    coco = json.loads((realdata / "coco" / "coco_mini_captions_train2017.json").read_text())
    wit_image = {"id": 999_999_999, "file_name": "palazzo.jpg", "coco_url": "http://127.0.0.1:9/palazzo.jpg"}
    coco["images"].append(wit_image)
    coco["annotations"].append({"id": 999_999_999, "image_id": wit_image["id"], "caption": WIT_DESCRIPTION})
    source = tmp_path / "captions_train2017.json"
    source.write_text(json.dumps(coco))
    out = tmp_path / "out"
    args = ["coco", "--input", str(source), "--lang", "it", "--translate", "--mt-model", str(marian128)]
    args += ["--mt-cache", str(tmp_path / "cache"), "--no-images", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output

    kept = read_parts(out / "captions").to_pylist()
    rejected = read_parts(out / "rejected").to_pylist() if (out / "rejected").is_dir() else []
    images = {str(image["id"]) for image in coco["images"]}
    assert {r["source_id"] for r in kept} | {r["source_id"] for r in rejected} == images
    assert len(kept) + len(rejected) == len(images)
    assert all(r["filter"] and r["filter_value"] for r in rejected)
    wit = next(r for r in kept + rejected if r["source_id"] == str(wit_image["id"]))
    assert wit.get("filter") in (None, "translate", "mt_degenerate")
    manifest = json.loads((out / "manifest.json").read_text())
    reports = reports_by_spec(manifest["counts"]["text"])
    translate = next(name for name in reports if name.startswith("translate="))
    by_filter = {(r["filter"], r["filter_value"].split(":")[0]) for r in rejected}
    for name, reason in by_filter:
        report = reports[translate] if name == "translate" else reports["mt_degenerate"]
        assert report[reason] == sum(
            1 for r in rejected if r["filter"] == name and r["filter_value"].split(":")[0] == reason
        )


# --- the cache under concurrency ------------------------------------------------------------------


def _context() -> multiprocessing.context.BaseContext:
    """fork where there is one (no re-import of capbuild per process), else spawn."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def _open_and_write(folder: str, worker: int, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()  # every process opens the (new) cache at the same moment
    cache = TranslationCache(Path(folder))
    for batch in range(5):
        cache.put_many((f"{worker}-{batch}-{i}".encode(), f"t{worker}") for i in range(50))
        cache.get_many([f"{worker}-{batch}-0".encode()])
    cache.close()


@pytest.mark.parametrize("round_", range(5))
def test_processes_creating_and_writing_one_new_cache_at_once_all_succeed(tmp_path: Path, round_: int) -> None:
    workers = 6
    context = _context()
    barrier = context.Barrier(workers)
    folder = tmp_path / "fresh" / "mt"  # not there yet: every process creates it
    processes = [context.Process(target=_open_and_write, args=(str(folder), w, barrier)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * workers
    cache = TranslationCache(folder)
    assert len(cache) == workers * 5 * 50
    assert not list(folder.glob(".*.tmp"))


def _write_and_hang(folder: str, ready: multiprocessing.synchronize.Event) -> None:
    cache = TranslationCache(Path(folder))
    cache.put_many([(b"committed", "kept")])
    cache._db.execute("BEGIN IMMEDIATE")
    cache._db.executemany("INSERT INTO translations VALUES (?, ?)", [(f"open-{i}".encode(), "x") for i in range(500)])
    ready.set()  # killed here, inside the write transaction, holding the write lock
    signal.pause()


def test_a_writer_killed_mid_transaction_leaves_a_usable_cache(tmp_path: Path) -> None:
    context = _context()
    ready = context.Event()
    writer = context.Process(target=_write_and_hang, args=(str(tmp_path), ready))
    writer.start()
    assert ready.wait(120)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(60)
    cache = TranslationCache(tmp_path)
    cache.put_many([(b"after", "written")])
    assert cache.get_many([b"committed", b"open-0", b"after"]) == {b"committed": "kept", b"after": "written"}
    assert len(cache) == 2
