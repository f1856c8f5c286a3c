"""Dataset card, publishing, mixtures and the report, on real builds: the 25 COCO photos of
../shared/realdata (two splits) and the demo's drawn images (with a missing file and drops)."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import braceexpand
import datasets
import pyarrow.compute as pc
import pytest
import webdataset as wds
import yaml
from huggingface_hub import DatasetCard, DatasetCardData
from PIL import Image
from typer.testing import CliRunner

from capbuild.build import BuildRequest, run_build
from capbuild.builders.coco import CocoBuilder
from capbuild.cards.facts import load_facts
from capbuild.cards.mix import make_mixture, read_mixture
from capbuild.cards.publish import upload_files
from capbuild.cards.report import build_report
from capbuild.cli import app
from capbuild.demo import write_sample_coco
from capbuild.images.stage import ImageOptions
from capbuild.manifest import load_manifest
from capbuild.stages.text.plan import make_plan
from capbuild.stages.text.records import counts_by_spec, plan_specs
from capbuild.table import read_parts

pytestmark = pytest.mark.slow
TOKEN = "hf_capbuildTestToken0123456789abcdef"


@pytest.fixture(scope="module")
def coco_build(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 25 real COCO photos, train and val captions, through the whole build."""
    coco = realdata / "images" / "coco"
    out = tmp_path_factory.mktemp("cards") / "coco-en"
    builder = CocoBuilder(
        lang="en",
        inputs=[coco / "captions_train2017.subset.json", coco / "captions_val2017.subset.json"],
        image_dirs=[coco / "train2017", coco / "val2017"],
    )
    images = ImageOptions(image_size=64, shard_size=5, threads=4)
    run_build(BuildRequest(builder=builder, out=out, plan=make_plan("en", ["len=3..12", "dedup"]), images=images))
    return out


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """capbuild's drawn sample: one image missing on disk, drops by len and dedup."""
    folder = tmp_path_factory.mktemp("cards")
    captions, images_dir = write_sample_coco(folder / "input")
    out = folder / "shapes-en"
    builder = CocoBuilder(lang="en", inputs=[captions], image_dirs=[images_dir])
    images = ImageOptions(image_size=48, shard_size=10, threads=4)
    run_build(BuildRequest(builder=builder, out=out, plan=make_plan("en", ["len=3..30", "dedup"]), images=images))
    return out


@pytest.fixture(scope="module")
def captions_only_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cards")
    captions, images_dir = write_sample_coco(folder / "input")
    out = folder / "shapes-text"
    builder = CocoBuilder(lang="en", inputs=[captions], image_dirs=[images_dir])
    run_build(BuildRequest(builder=builder, out=out, plan=make_plan("en", ["len=3..30"]), images=None))
    return out


def card_yaml(out: Path) -> dict[str, Any]:
    text = (out / "README.md").read_text(encoding="utf-8")
    match = re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL)
    assert match, "the card starts with a YAML block"
    return yaml.safe_load(match.group(1))


def markdown_table(text: str, first_header: str) -> list[dict[str, str]]:
    """The rows of the markdown table whose first column is `first_header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    headers = [h.strip() for h in lines[start].strip("|").split(" | ")]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(headers, (c.strip() for c in line.strip().strip("|").split(" | ")), strict=True)))
    return rows


def run_cli(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


# --- the card ---------------------------------------------------------------------------------


def test_card_metadata_is_valid_dataset_card_data(coco_build: Path) -> None:
    metadata = card_yaml(coco_build)
    data = DatasetCard.load(coco_build / "README.md").data
    assert isinstance(data, DatasetCardData)
    assert DatasetCardData(**metadata).to_dict() == data.to_dict()
    assert data.license == "cc-by-4.0"
    assert data.language == ["en"]
    assert data.task_categories == ["text-to-image", "image-to-text", "zero-shot-image-classification"]
    assert data.size_categories == "n<1K"
    assert data.source_datasets == ["coco"]
    assert data.pretty_name
    manifest = load_manifest(coco_build)
    splits = manifest["counts"]["images"]["splits"]
    assert set(splits) == {"train", "val"}
    files = {f["split"]: f["path"] for f in data.configs[0]["data_files"]}
    assert files == {split: [f"shards/{s}" for s in shards] for split, shards in splits.items()}


def test_card_counts_equal_the_manifest(coco_build: Path) -> None:
    manifest = load_manifest(coco_build)
    text, images = manifest["counts"]["text"], manifest["counts"]["images"]
    card = (coco_build / "README.md").read_text(encoding="utf-8")
    (source,) = markdown_table(card, "source")
    assert source["source"] == "coco"
    assert int(source["rows read"]) == text["source_rows"] == 25
    assert int(source["kept"]) == text["captions"]
    for spec, counts in counts_by_spec(text).items():
        assert int(source[f"dropped by {spec}"]) == counts["dropped"]
    assert int(source["dropped by len=3..12"]) > 0, "the fixture's len filter drops real captions"
    assert int(source["images fetched"]) == images["success"]
    filters = {row["step"].strip("`"): row for row in markdown_table(card, "step")}
    assert list(filters) == plan_specs(manifest)
    for spec, counts in counts_by_spec(text).items():
        assert [int(filters[spec][k]) for k in ("in", "kept", "dropped", "errors")] == [
            counts[k] for k in ("in", "kept", "dropped", "errors")
        ]
    assert [row["kind"] for row in filters.values()] == ["rewriter", "filter", "filter", "filter"]
    sizes = json.loads((coco_build / "shards" / "sizes.json").read_text())
    for row in markdown_table(card, "split"):
        assert int(row["samples (images)"]) == sum(sizes[s] for s in images["splits"][row["split"]])
    assert "```bibtex\n@inproceedings{lin2014microsoft" in card


def test_load_dataset_reads_every_split_of_the_card(coco_build: Path, tmp_path: Path) -> None:
    manifest = load_manifest(coco_build)
    sizes = json.loads((coco_build / "shards" / "sizes.json").read_text())
    loaded = datasets.load_dataset(str(coco_build), cache_dir=str(tmp_path / "cache"))
    table = read_parts(coco_build / "captions")
    assert set(loaded) == set(manifest["counts"]["images"]["splits"])
    for split, shards in manifest["counts"]["images"]["splits"].items():
        rows = loaded[split]
        assert rows.num_rows == sum(sizes[s] for s in shards)
        keys = set(table.filter(pc.equal(table["split"], split))["key"].to_pylist())
        assert set(rows["__key__"]) == keys
        assert all(meta["key"] == key for meta, key in zip(rows["json"], rows["__key__"], strict=True))
    assert sum(loaded[s].num_rows for s in loaded) == manifest["counts"]["images"]["success"]


def test_card_command_rewrites_the_same_card(coco_build: Path) -> None:
    before = (coco_build / "README.md").read_text(encoding="utf-8")
    result = run_cli("card", str(coco_build))
    assert result.exit_code == 0, result.output
    assert (coco_build / "README.md").read_text(encoding="utf-8") == before


def test_writing_a_card_loads_no_model_library(coco_build: Path) -> None:
    """The card is written at the end of every build: it must not pay for torch (via webdataset)."""
    code = (
        "import json, sys; from pathlib import Path; from capbuild.cards.card import write_card; "
        f"write_card(Path({str(coco_build)!r})); "
        "print(json.dumps([m for m in ('torch', 'webdataset', 'transformers', 'datasets') if m in sys.modules]))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout.splitlines()[-1]) == []


def test_card_of_a_build_without_images_loads_the_caption_table(captions_only_build: Path, tmp_path: Path) -> None:
    data = DatasetCard.load(captions_only_build / "README.md").data
    assert data.configs == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "captions/part-*.parquet"}]}
    ]
    assert "webdataset" not in data.tags
    loaded = datasets.load_dataset(str(captions_only_build), cache_dir=str(tmp_path / "cache"))
    assert loaded["train"].num_rows == load_manifest(captions_only_build)["counts"]["text"]["captions"]


def test_card_of_a_folder_that_is_no_build_says_so(tmp_path: Path) -> None:
    result = run_cli("card", str(tmp_path))
    assert result.exit_code == 2
    assert "no manifest.json" in result.output


# --- publish --------------------------------------------------------------------------------


def test_publish_selects_exactly_what_users_need(demo_build: Path) -> None:
    files = {f.path: f.size for f in upload_files(demo_build)}
    sizes = json.loads((demo_build / "shards" / "sizes.json").read_text())
    expected = {"README.md", "manifest.json", "shards/sizes.json", *(f"shards/{s}" for s in sizes)}
    expected |= {p.relative_to(demo_build).as_posix() for p in (demo_build / "captions").glob("part-*.parquet")}
    assert set(files) == expected
    assert all(files[p] == (demo_build / p).stat().st_size for p in files)
    assert (demo_build / "rejected").is_dir(), "rejected/ exists but stays local"


def test_publish_dry_run_lists_files_and_never_shows_the_token(demo_build: Path) -> None:
    result = run_cli("publish", str(demo_build), "--repo", "someone/shapes", "--dry-run", env={"HF_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    for f in upload_files(demo_build):
        assert f.path in result.output
    assert "rejected" not in result.output
    assert "_stats.json" not in result.output
    assert TOKEN not in result.output


def test_publish_offline_fails_clearly_without_the_token(demo_build: Path) -> None:
    # HF_HUB_OFFLINE=1 (conftest): the library refuses to reach the Hub, capbuild says what to check.
    result = run_cli("publish", str(demo_build), "--repo", "someone/shapes", env={"HF_TOKEN": TOKEN})
    assert result.exit_code == 2
    assert "publishing to datasets/someone/shapes failed" in result.output
    assert TOKEN not in result.output


def test_publish_without_a_token_says_how_to_log_in(
    demo_build: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "stored_tokens"))
    result = run_cli("publish", str(demo_build), "--repo", "someone/shapes")
    assert result.exit_code == 2
    assert "set HF_TOKEN or run `hf auth login`" in result.output


# --- mix ------------------------------------------------------------------------------------


def test_mixture_lists_shards_and_weights_for_the_trainer(coco_build: Path, demo_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "mix"
    result = run_cli("mix", str(coco_build), str(demo_build), "--weights", "3,1", "--out", str(out))
    assert result.exit_code == 0, result.output
    mixture = json.loads((out / "mixture.json").read_text())
    sources = read_mixture(out)
    assert [s.name for s in sources] == ["coco-en", "shapes-en"]
    assert [s.weight for s in sources] == [3.0, 1.0]
    assert [s.probability for s in sources] == [0.75, 0.25]
    for source, entry, build in zip(sources, mixture["sources"], (coco_build, demo_build), strict=True):
        facts = load_facts(build)
        train = [str((build / "shards" / s).resolve()) for s in facts.splits["train"]]
        assert source.shards == train
        assert list(braceexpand.braceexpand(entry["pattern"])) == train
        assert source.samples == facts.split_samples()["train"]
        read = list(wds.WebDataset(entry["pattern"], shardshuffle=False, empty_check=False).decode("pil"))
        assert len([r for r in read if "jpg" in r]) == source.samples
        assert set(source.splits) == set(facts.splits)
    patterns = [e["pattern"] for e in mixture["sources"]]
    assert mixture["capbuild_train"] == {"data": patterns, "weights": [3.0, 1.0]}
    open_clip = mixture["open_clip"]
    factors = [float(f) for f in open_clip["train_data_upsampling_factors"].split("::")]
    shares = [f * s.samples for f, s in zip(factors, sources, strict=True)]
    assert shares[0] / shares[1] == pytest.approx(3.0, rel=1e-4)
    assert open_clip["train_data"].split("::") == patterns
    manifest = load_manifest(out)
    assert manifest["kind"] == "mixture"
    assert [b["weight"] for b in manifest["builds"]] == [3.0, 1.0]
    assert manifest["counts"]["samples"] == sum(load_facts(b).samples for b in (coco_build, demo_build))
    data = DatasetCard.load(out / "README.md").data
    assert "configs" not in data.to_dict(), "without --copy the shards are elsewhere"
    assert "mixture" in data.tags
    refused = run_cli("inspect", str(out))
    assert refused.exit_code == 2 and "is a mixture" in refused.output


def test_mixture_with_copy_is_a_loadable_folder(coco_build: Path, demo_build: Path, tmp_path: Path) -> None:
    out = tmp_path / "mix"
    make_mixture([coco_build, demo_build], [1.0, 1.0], out, copy=True)
    sources = read_mixture(out / "mixture.json")
    for source in sources:
        assert all(Path(s).is_relative_to(out.resolve()) and Path(s).is_file() for s in source.shards)
    entries = json.loads((out / "mixture.json").read_text())["sources"]
    assert all(not Path(s).is_absolute() for e in entries for s in e["shards"])
    loaded = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))
    totals = json.loads((out / "mixture.json").read_text())["samples"]
    assert {split: loaded[split].num_rows for split in loaded} == totals


def test_mixture_of_a_build_without_images_is_refused(captions_only_build: Path, tmp_path: Path) -> None:
    result = run_cli("mix", str(captions_only_build), "--out", str(tmp_path / "mix"))
    assert result.exit_code == 2
    assert "no train samples in shards" in result.output


# --- inspect --------------------------------------------------------------------------------


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.filters: list[str] = []
        self.reasons: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "img":
            self.images.append(attributes["src"] or "")
        for name in ("href", "src"):
            if attributes.get(name) and tag != "img":
                self.links.append(attributes[name] or "")
        if "data-filter" in attributes:
            self.filters.append(attributes["data-filter"] or "")
        if "data-reason" in attributes:
            self.reasons.append(attributes["data-reason"] or "")
        self.svgs += tag == "svg"


def test_html_report_is_self_contained_and_shows_every_filter(demo_build: Path, tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    result = run_cli("inspect", str(demo_build), "--html", str(path), "--samples", "8")
    assert result.exit_code == 0, result.output
    page = _Collector()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    manifest = load_manifest(demo_build)
    assert page.filters == plan_specs(manifest)
    assert page.reasons == list(manifest["counts"]["images"]["failed"]) == ["missing_file"]
    assert page.links == []
    assert len(page.images) >= 8 + 2, "8 kept samples and thumbnails of the dropped rows' local images"
    for src in page.images:
        assert src.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as image:
            assert max(image.size) <= 128
    assert page.svgs >= 1, "the caption-length histogram"


def test_report_draws_kept_samples_from_the_shards_reproducibly(demo_build: Path) -> None:
    first = build_report(demo_build, samples=6, seed=0)
    again = build_report(demo_build, samples=6, seed=0)
    assert [s.key for s in first.kept] == [s.key for s in again.kept]
    assert len(first.kept) == 6
    table = read_parts(demo_build / "captions")
    captions = dict(zip(table["key"].to_pylist(), table["caption"].to_pylist(), strict=True))
    assert all(captions[s.key] == s.caption and s.thumbnail for s in first.kept)
    rejected = read_parts(demo_build / "rejected")
    shown = {s.key for samples in first.dropped.values() for s in samples}
    assert shown == set(rejected["key"].to_pylist())
    assert [h.title for h in first.histograms] == ["Words per caption"]
    assert sum(first.histograms[0].counts) == table.num_rows


def test_inspect_without_html_prints_a_summary(demo_build: Path) -> None:
    result = run_cli("inspect", str(demo_build))
    assert result.exit_code == 0, result.output
    manifest = load_manifest(demo_build)
    for spec in plan_specs(manifest):
        assert spec in result.output
    assert "missing_file" in result.output
    assert f"{manifest['counts']['images']['success']} samples" in result.output
