"""OUT/README.md: the Hugging Face dataset card of a build, generated from its manifest and tables.

The YAML metadata is huggingface_hub's DatasetCardData; its `configs` point at the shards of each
split, so `datasets.load_dataset(OUT)` (or the Hub repo) loads the folder as it is.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from huggingface_hub import DatasetCard, DatasetCardData

from capbuild.atomic import write_text_atomic
from capbuild.builders.base import builders
from capbuild.cards.facts import BuildFacts, hf_split_name, load_facts, shard_pattern
from capbuild.cards.public import public_manifest
from capbuild.layout import CARD, BuildLayout
from capbuild.stages.text.records import is_translation_step, plan_steps

CARD_NAME = CARD
TASK_CATEGORIES = ["text-to-image", "image-to-text", "zero-shot-image-classification"]
SIZE_CATEGORIES = (
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
    (10_000_000_000, "1B<n<10B"),
    (100_000_000_000, "10B<n<100B"),
    (1_000_000_000_000, "100B<n<1T"),
)
CAPTION_PARTS = "captions/part-*.parquet"


def write_card(out: Path) -> Path:
    """Write OUT/README.md from the build's manifest, shards and tables; returns its path."""
    path = BuildLayout(out).card
    write_text_atomic(path, str(make_card(load_facts(out))))
    return path


def make_card(facts: BuildFacts, root: Path | None = None) -> DatasetCard:
    """The dataset card of one build. Local paths in the recorded configuration appear relative to
    `root` (when under it) or as file names: a card never names the build machine's folders."""
    facts = dataclasses.replace(facts, manifest=public_manifest(facts.manifest, root))
    from capbuild.cards.image_filters import image_filters_section

    body = "\n\n".join(
        section
        for section in (
            _title(facts),
            _splits_section(facts),
            sources_section(facts),
            _filters_section(facts),
            decontamination_section(facts.manifest),
            _translation_section(facts),
            _images_section(facts),
            image_filters_section(facts),
            _caption_section(facts),
            _loading_section(facts),
            licences_section(facts.sources),
            limitations_section(facts.sources, facts.captions.translated > 0),
            _reproduce_section(facts),
        )
        if section
    )
    return card_from(make_card_data(facts), body)


def card_from(data: DatasetCardData, body: str) -> DatasetCard:
    """A DatasetCard of YAML metadata and a markdown body."""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")


def make_card_data(facts: BuildFacts) -> DatasetCardData:
    sources = facts.sources
    return DatasetCardData(
        language=facts.captions.languages or None,
        multilinguality="monolingual" if len(facts.captions.languages) <= 1 else "multilingual",
        language_creators=["machine-generated", "found"] if facts.captions.translated else ["found"],
        annotations_creators=["found"],
        task_categories=TASK_CATEGORIES,
        size_categories=size_category(facts.samples),
        source_datasets=sorted(sources),
        pretty_name=pretty_name(sorted(sources), facts.captions.languages),
        tags=["capbuild", "image-text", "clip", *(["webdataset"] if facts.has_shards else [])],
        configs=card_configs(facts),
        **license_metadata(sources),
    )


def pretty_name(sources: list[str], languages: list[str]) -> str:
    return f"{' + '.join(sources) or 'capbuild'} image captions ({', '.join(languages) or 'no captions'})"


def size_category(count: int) -> str:
    for limit, name in SIZE_CATEGORIES:
        if count < limit:
            return name
    return "n>1T"


def license_metadata(sources: dict[str, dict[str, Any]]) -> dict[str, str]:
    """`license`, plus `license_name`/`license_details`/`license_link` when it is `other`."""
    licences = {info.get("license") or "unknown" for info in sources.values()}
    if len(licences) == 1 and "other" not in licences:
        return {"license": licences.pop()}
    details = "; ".join(f"{name}: {info['license']} ({info['homepage']})" for name, info in sorted(sources.items()))
    metadata = {"license": "other", "license_details": details or "no sources recorded"}
    if len(sources) == 1:
        name, info = next(iter(sources.items()))
        metadata |= {"license_name": f"{name}-terms", "license_link": info["homepage"]}
    else:
        metadata["license_name"] = "mixed"
    return metadata


def card_configs(facts: BuildFacts) -> list[dict[str, Any]]:
    """`configs` for the card: the shards of each split, or the caption table when there are none."""
    data_files = []
    for split, shards in facts.splits.items():
        filled = [f"shards/{s}" for s in shards if facts.sizes.get(s, 0) > 0]
        if filled:
            data_files.append({"split": hf_split_name(split), "path": filled})
    if not data_files:
        data_files = [{"split": "train", "path": CAPTION_PARTS}]
    return [{"config_name": "default", "data_files": data_files}]


def md_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A markdown table; `|` in cells is escaped."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def reasons(counts: dict[str, int]) -> str:
    """'missing_file: 2, http_404: 1' (or 0)."""
    return ", ".join(f"{reason}: {n}" for reason, n in sorted(counts.items())) or "0"


def _title(facts: BuildFacts) -> str:
    names = ", ".join(sorted(facts.sources)) or "no source"
    kind = "image-caption pairs in WebDataset shards" if facts.has_shards else "captions with image URLs (no images)"
    languages = ", ".join(facts.captions.languages) or "no language"
    return (
        f"# {pretty_name(sorted(facts.sources), facts.captions.languages)}\n\n"
        f"{facts.samples:,} {kind}, captions in {languages}, from {names}. Built with "
        f"capbuild {facts.manifest.get('capbuild', '')} (build fingerprint "
        f"`{facts.manifest.get('fingerprint', '')}`): the same command on the same inputs gives the same data."
    )


def _splits_section(facts: BuildFacts) -> str:
    captions = facts.captions.per_split
    if not facts.has_shards:
        rows = [[split, n] for split, n in captions.items()]
        return (
            "## Splits\n\nThis build has no images: the caption table (`captions/part-*.parquet`) is the dataset; "
            "its `split` column holds each row's split.\n\n" + md_table(["split", "captions"], rows)
        )
    samples = facts.split_samples()
    rows = [
        [split, len(shards), shard_pattern("shards/", shards) if shards else "", samples[split], captions.get(split, 0)]
        for split, shards in facts.splits.items()
    ]
    return "## Splits\n\n" + md_table(["split", "shards", "files", "samples (images)", "captions kept"], rows)


def sources_section(facts: BuildFacts) -> str:
    """Rows read, kept, dropped per filter, images fetched and failed, per source."""
    text = facts.manifest["counts"].get("text", {})
    images = facts.manifest["counts"].get("images") or {}
    specs = facts.filter_specs
    headers = ["source", "licence", "rows read", "kept", *(f"dropped by {s}" for s in specs)]
    if images:
        headers += ["images fetched", "images failed"]
    rows = []
    for source, counts in text.get("per_source", {}).items():
        drops = facts.drops.get(source, {})
        row = [
            source,
            facts.sources.get(source, {}).get("license", "unknown"),
            counts["captions"] + counts["rejected"],
            counts["captions"],
            *(drops.get(spec, 0) for spec in specs),
        ]
        if images:
            outcome = dict(images.get("per_source", {}).get(source, {}))
            fetched = outcome.pop("success", 0)
            row += [fetched, reasons(outcome)]
        rows.append(row)
    skipped = text.get("builder", {})
    builder_rows = [[kind, reason, n] for kind, counts in skipped.items() for reason, n in counts.items()]
    section = "## Sources\n\n" + md_table(headers, rows)
    for name, info in sorted(facts.sources.items()):
        cls = builders().get(info.get("builder") or name)
        notes = cls.card_notes() if cls is not None else ""
        if notes:
            section += f"\n\n{name}: {notes}"
    if builder_rows:
        section += "\n\nRecords the source parsers could not use (skipped) or fixed (repaired):\n\n" + md_table(
            ["what", "reason", "count"], builder_rows
        )
    return section


def _step_options(facts: BuildFacts, translation: bool) -> dict[str, Any]:
    """The options of the build's steps (model, thresholds, ...), of the translation steps or of the others."""
    shown: dict[str, Any] = {}
    for step in plan_steps(facts.manifest):
        if is_translation_step(step["name"]) == translation:
            shown.update({k: v for k, v in _flat(step.get("options", {})).items() if v is not None})
    return shown


def _flat(options: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in options.items():
        flat.update(_flat(value) if isinstance(value, dict) else {key: value})
    return flat


def _filters_section(facts: BuildFacts) -> str:
    rows = [
        [f"`{r.spec}`", r.kind, r.counts.get("in", 0), r.counts.get("kept", 0), r.counts.get("dropped", 0),
         r.counts.get("errors", 0)]
        for r in facts.steps
    ]  # fmt: skip
    shown = _step_options(facts, translation=False)
    section = (
        "## Filters\n\nThe text steps, applied in this order (rewriters change text, filters keep or drop rows); "
        "`NAME=ARG` holds the threshold. Every dropped row is in `rejected/` with the step's name and the value "
        "that failed (not published); `errors` counts the captions a model failed on (their value starts with "
        "`error:`).\n\n" + md_table(["step", "kind", "in", "kept", "dropped", "errors"], rows)
    )
    if shown:
        section += "\n\nStep options: " + ", ".join(f"`{k}={v}`" for k, v in sorted(shown.items()))
    for record in facts.steps:
        if record.report and not record.is_translation:
            report = record.report
            section += f"\n\n`{record.spec}`: " + ", ".join(
                f"{k} {json.dumps(v, ensure_ascii=False)}" for k, v in report.items()
            )
    return section


def _translation_section(facts: BuildFacts) -> str:
    specs = [r.spec for r in facts.steps if r.name == "translate"]
    translated = facts.captions.translated
    if not specs:
        if translated:
            return (
                f"## Translation\n\n{translated:,} captions are translations made before capbuild "
                "(their `lang_orig` differs from `lang`); the source's own files say by whom."
            )
        return "## Translation\n\nNone: every caption is in the language its source wrote it in."
    options = _step_options(facts, translation=True)
    rows = [["step", f"`{spec}`"] for spec in specs]
    rows += [[k, f"`{json.dumps(v, ensure_ascii=False)}`"] for k, v in sorted(options.items())]
    for record in facts.steps:
        if record.is_translation:
            rows += [[k, f"`{json.dumps(v, ensure_ascii=False)}`"] for k, v in record.report.items()]
    return (
        f"## Translation\n\n{translated:,} captions were machine-translated with CTranslate2; the original caption "
        "and its language stay in `caption_orig` and `lang_orig`.\n\n" + md_table(["setting", "value"], rows)
    )


def _images_section(facts: BuildFacts) -> str:
    images = facts.manifest["counts"].get("images")
    options = facts.manifest["config"].get("images")
    if not images or not options:
        return ""
    settings = ", ".join(f"{k}={v}" for k, v in options.items())
    return (
        f"## Images\n\nFetched and resized by img2dataset ({settings}): {images['attempted']:,} attempted, "
        f"{images['success']:,} in {images['shards']} shard(s), failed: {reasons(images['failed'])}.\n\n"
        "Each sample holds `KEY.jpg` (the image), `KEY.txt` (the caption) and `KEY.json` (source, source id, "
        "original caption and language, all captions of the image, URL, size, filter scores); `KEY` is the "
        "caption table's `key`. `shards/sizes.json` gives the samples per shard."
    )


def _caption_section(facts: BuildFacts) -> str:
    stats = facts.captions
    if not stats.rows:
        return "## Captions\n\nNo caption was kept."
    rows = [
        ["captions kept", f"{stats.rows:,}"],
        ["distinct captions", f"{stats.unique_captions:,}"],
        ["languages", ", ".join(stats.languages)],
        ["machine- or human-translated", f"{stats.translated:,}"],
    ]
    for name, values in (
        ("words per caption", stats.words),
        ("characters per caption", stats.chars),
        ("captions per image", stats.captions_per_image),
        ("PROPN ratio", stats.propn_ratio or {}),
    ):
        if values:
            rows.append([name, ", ".join(f"{k} {v:g}" for k, v in values.items())])
    return "## Captions\n\n" + md_table(["statistic", "value"], rows)


def _loading_section(facts: BuildFacts) -> str:
    if not facts.has_shards:
        return (
            "## Load it\n\n```python\nfrom datasets import load_dataset\n\n"
            'table = load_dataset("path/or/hub-id")["train"]  # the caption table, every split\n```'
        )
    splits = {split: shards for split, shards in facts.splits.items() if shards}
    train_split = "train" if "train" in splits else next(iter(splits))
    train = shard_pattern("shards/", splits[train_split])
    val_split = next((s for s in splits if s != train_split), None)
    val = f" \\\n    --val-data '{shard_pattern('shards/', splits[val_split])}'" if val_split else ""
    split_names = ", ".join(hf_split_name(s) for s in splits)
    return f"""## Load it

With [webdataset](https://github.com/webdataset/webdataset):

```python
import webdataset as wds

dataset = wds.WebDataset("{train}", shardshuffle=False).decode("pil").to_tuple("jpg", "txt", "json")
```

With 🤗 datasets (splits: {split_names}):

```python
from datasets import load_dataset

dataset = load_dataset("path/or/hub-id")  # or the build folder itself
```

With [open_clip](https://github.com/mlfoundations/open_clip) (`shards/sizes.json` gives the sample counts, so
`--train-num-samples` is not needed; open_clip's own loader wants webdataset < 0.2.96, see its issue #935):

```bash
python -m open_clip_train.main --dataset-type webdataset --train-data '{train}'{val} ...
```"""


def licences_section(sources: dict[str, dict[str, Any]]) -> str:
    """Every source's licence (when known), homepage and BibTeX citation."""
    parts = ["## Licences and citations"]
    for name, info in sorted(sources.items()):
        lines = [f"### {name}"]
        terms = "images keep the terms their owners gave them"
        if info.get("license"):
            where = f"see {info['homepage']}; " if info.get("homepage") else ""
            lines.append(f"Licence: `{info['license']}` ({where}{terms}).")
        else:
            lines.append(f"No licence was given for this source: ask its publisher before reuse ({terms}).")
        if info.get("citation", "").strip():
            lines.append(f"```bibtex\n{info['citation'].strip()}\n```")
        parts.append("\n\n".join(lines))
    return "\n\n".join(parts)


def limitations_section(sources: dict[str, Any], translated: bool) -> str:
    """What users should know before training on the data: translation noise only when something was
    translated, then each source's own limitations (its builder's `limitations()`)."""
    items = []
    if translated:
        items += [
            "**Machine translation noise.** This build holds machine-translated captions. Translated captions carry "
            "the translator's errors: literal renderings, wrong word senses, dropped details, repeated phrases on "
            "long or noisy input.",
            "**Gender marking lost or invented in translation.** Going from a language that does not mark "
            "grammatical gender (English) to one that does forces the translator to pick one, usually the "
            "stereotyped one; going the other way erases it.",
        ]
    items.append(
        "**Caption style follows the source.** COCO and Flickr captions describe scenes plainly; crowd-written "
        "captions share their writers' cultural viewpoint and the images over-represent some places and people."
    )
    for name, info in sorted(sources.items()):
        cls = builders().get(info.get("builder") or name)
        items += cls.limitations() if cls is not None else []
    return "## Limitations and biases\n\n" + "\n".join(f"- {item}" for item in items)


def _reproduce_section(facts: BuildFacts) -> str:
    config = json.dumps(facts.manifest["config"], indent=2, ensure_ascii=False)
    versions = ", ".join(f"{k} {v}" for k, v in facts.manifest.get("versions", {}).items())
    return (
        f"## Reproduce\n\nPackage versions: {versions}.\n\n`manifest.json` holds the whole record; "
        f"the configuration that decides the output:\n\n```json\n{config}\n```"
    )


def decontamination_section(manifest: dict[str, Any]) -> str:
    """The evaluation sets the build was decontaminated against (by image_ref), with the rows dropped."""
    records = [r for r in manifest.get("decontamination", []) if not r.get("pending")]
    if not records:
        return ""
    lines = [
        f"- decontaminated against {r['label']}: {r['rows']} rows"
        + (f", {r['samples']} shard samples" if r.get("samples") else "")
        + f" ({'in the text stage' if r.get('stage') == 'text' else 'after the build'}; set `{r['against']}`)"
        for r in records
    ]
    return (
        "## Decontamination\n\nRows showing an image of these evaluation sets (same `image_ref`: the same COCO, "
        "Flickr, Open Images or Commons image) were removed; they are in `rejected/` with filter `decontaminate`.\n\n"
        + "\n".join(lines)
    )
