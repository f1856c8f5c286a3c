"""End to end: a French COCO-layout build with --filter propn=0.8 (fr_core_news_sm) and --filter lang=fr."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from extras import require_extra
from pos_fixtures import write_french_coco
from typer.testing import CliRunner

from capbuild.build import BuildRequest, run_build
from capbuild.builders.coco import CocoBuilder
from capbuild.cli import app
from capbuild.images.stage import ImageOptions
from capbuild.stages.text.options import TextOptions
from capbuild.stages.text.plan import make_plan
from capbuild.stages.text.records import counts_by_spec, plan_specs
from capbuild.table import read_parts

require_extra("pos", "spacy", "fr_core_news_sm")

KEPT = ["Un chien court sur la plage.", "Le président Jacques Chirac", "Une femme lit un livre près de la fenêtre"]
PROPER_NOUNS = ["Lyon, France", "Pierre Dupont"]
ENGLISH = ["A dog runs on the beach with a red ball"]
CAPTIONS = [KEPT[0], PROPER_NOUNS[0], KEPT[1], ENGLISH[0], PROPER_NOUNS[1], KEPT[2]]
FILTERS = ["propn=0.8", "lang=fr"]


@pytest.mark.slow
def test_build_keeps_ratios_for_kept_and_rejected_rows_and_in_the_shards(tmp_path: Path) -> None:
    captions_file, images_dir = write_french_coco(tmp_path / "input", CAPTIONS)
    request = BuildRequest(
        builder=CocoBuilder(lang="fr", inputs=[captions_file], image_dirs=[images_dir]),
        out=tmp_path / "out",
        plan=make_plan("fr", FILTERS),
        images=ImageOptions(image_size=32, shard_size=10, threads=2),
    )
    manifest = run_build(request)

    kept = read_parts(request.out / "captions").to_pylist()
    assert [r["caption"] for r in kept] == KEPT
    assert [r["propn_ratio"] for r in kept] == pytest.approx([0.0, 0.5, 0.0])
    assert all(r["lang_detected"] == "fr" and r["lang_score"] > 0 for r in kept)

    rejected = {r["caption"]: r for r in read_parts(request.out / "rejected").to_pylist()}
    assert {c: (r["filter"], r["propn_ratio"]) for c, r in rejected.items()} == {
        "Lyon, France": ("propn", 1.0),
        "Pierre Dupont": ("propn", 1.0),
        ENGLISH[0]: ("lang", pytest.approx(0.1)),  # the French model takes one English word for a name
    }
    assert rejected[ENGLISH[0]]["lang_detected"] == "en"
    assert rejected[ENGLISH[0]]["filter_value"].startswith("en:")

    text = manifest["counts"]["text"]
    counts = counts_by_spec(text)
    assert counts["propn=0.8"] == {"in": 6, "kept": 4, "dropped": 2, "errors": 0}
    assert counts["lang=fr"] == {"in": 4, "kept": 3, "dropped": 1, "errors": 0}
    assert (text["captions"], text["rejected"]) == (3, 3)
    assert plan_specs(manifest) == ["clean", "unique_key", *FILTERS]

    with tarfile.open(request.out / "shards" / "00000.tar") as tar:
        metadata = [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".json")]
    assert sorted((m["caption"], m["propn_ratio"], m["lang_detected"]) for m in metadata) == sorted(
        (r["caption"], r["propn_ratio"], "fr") for r in kept
    )


@pytest.mark.slow
def test_cli_build_and_info_show_counts_per_filter(tmp_path: Path) -> None:
    captions_file, images_dir = write_french_coco(tmp_path / "input", CAPTIONS)
    out = tmp_path / "out"
    runner = CliRunner()
    command = ["coco", "--input", str(captions_file), "--images", str(images_dir), "--lang", "fr", "--no-images"]
    command += ["--filter", "propn=0.8", "--propn-denominator", "all", "--out", str(out)]
    result = runner.invoke(app, command, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    # With punctuation counted, "Lyon, France" is 2/3 proper nouns and stays.
    assert "6 rows read, 5 kept, 1 rejected" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    propn = next(step for step in manifest["config"]["plan"] if step["name"] == "propn")
    assert (propn["kind"], propn["options"]["pos"]["propn_denominator"]) == ("filter", "all")

    info = runner.invoke(app, ["info", str(out)], env={"COLUMNS": "200"})
    assert info.exit_code == 0, info.output
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in info.output.splitlines()]
    assert ["propn=0.8", "filter", "6", "5", "1", "0"] in rows


def test_cli_missing_pos_model_is_an_error_before_any_work(tmp_path: Path) -> None:
    captions_file, _ = write_french_coco(tmp_path / "input", CAPTIONS[:1])
    command = ["coco", "--input", str(captions_file), "--lang", "it", "--no-images", "--filter", "propn=0.8"]
    result = CliRunner().invoke(app, [*command, "--out", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "python -m spacy download it_core_news_sm" in result.output
    assert not (tmp_path / "out").exists()


def test_pos_workers_and_batch_size_stay_out_of_the_fingerprint(tmp_path, realdata):
    from capbuild.build import BuildRequest
    from capbuild.builders.coco import CocoBuilder

    builder = CocoBuilder(inputs=[realdata / "coco" / "coco_mini_captions_train2017.json"], lang="fr")

    def request(**options):
        return BuildRequest(builder, tmp_path, make_plan("fr", ["propn=0.8"], [], TextOptions(**options)), images=None)

    one = request(pos_workers=1, pos_batch_size=64)
    two = request(pos_workers=2, pos_batch_size=256)
    other = request(propn_denominator="all")
    assert one.config() == two.config() != other.config()


def test_a_build_of_several_languages_judges_each_row_in_its_own_language():
    from capbuild.filters.base import make_filter
    from capbuild.table import make_row, rows_to_table

    rows = [
        ("fr", "Un chien court sur la plage."),
        ("it", "Un gatto dorme sul divano rosso."),
        ("it", "Nicolas Sarkozy à Paris en 2008"),  # tagged Italian by its page, written in French
        ("fr", "Lyon, France"),
    ]
    table = rows_to_table(
        [
            make_row(source="t", source_id=str(i), captions=[c], lang=lang, image_url=None)
            for i, (lang, c) in enumerate(rows)
        ]
    )
    options = TextOptions(pos_model="fr_core_news_sm", lang_candidates="fr,it,en")
    propn = make_filter("propn=0.8", "fr,it", options)
    result = propn.apply(table)
    assert sorted(propn._backends) == ["fr", "it"]
    single = make_filter("propn=0.8", "fr", TextOptions(pos_model="fr_core_news_sm"))
    assert result.values == single.score([c for _, c in rows])
    assert result.keep == [True, True, True, False]

    language = make_filter("lang", "fr,it", options)
    assert language.apply(table).keep == [True, True, False, True]
