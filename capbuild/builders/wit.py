"""WIT (Wikipedia-based Image Text): wit_v1 TSV files, gzipped or not, local or remote, and the Kaggle layout."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from capbuild.builders.base import Builder, register, split_from_name
from capbuild.builders.commons import strip_language_prefixes
from capbuild.builders.inputs import base_name
from capbuild.builders.mime import undecodable_reason
from capbuild.builders.wit_reader import WitReader
from capbuild.errors import ConfigError
from capbuild.options import opt

CAPTION_COLUMNS = {
    "reference": "caption_reference_description",
    "attribution": "caption_attribution_description",
    "alt": "caption_alt_text_description",
}
CAPTION_FIELDS = (*CAPTION_COLUMNS, "all")
META_TEXT = ("page_url", "page_title", "section_title", "hierarchical_section_title", "mime_type")
META_BOOL = ("is_main_image", "attribution_passes_lang_id")
META_INT = ("original_width", "original_height")


def parse_languages(text: str) -> list[str]:
    """'it' or 'it,ar' (or 'it ar') -> ['it', 'ar']."""
    langs = [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]
    if not langs:
        raise ConfigError("--lang needs at least one language code, e.g. --lang it or --lang it,ar")
    return langs


@register
@dataclass
class WitBuilder(Builder):
    """Rows of WIT whose `language` is one of `lang` (comma-separated codes), one row per WIT record.

    `caption_field` picks the caption: the reference description (default: the caption under the
    image in the article, clip-italian's choice), the Commons attribution (language prefixes
    stripped), the alt text, or `all` of them (non-empty, in that order) in `captions`.
    """

    name = "wit"
    summary = "WIT (Wikipedia-based Image Text) TSV files, gzipped or not, local or remote; --lang it,ar keeps those."
    example = "capbuild wit wit_v1.train.all-*.tsv.gz --lang it --filter propn=0.8 --out it-wit/"
    licence = "cc-by-sa-3.0"
    homepage = "https://github.com/google-research-datasets/wit"
    citation = """@inproceedings{srinivasan2021wit,
  title={WIT: Wikipedia-based Image Text Dataset for Multimodal Multilingual Machine Learning},
  author={Srinivasan, Krishna and Raman, Karthik and Chen, Jiecao and Bendersky, Michael and Najork, Marc},
  booktitle={Proceedings of the 44th International ACM SIGIR Conference on Research and Development in
             Information Retrieval},
  pages={2443--2449},
  year={2021}
}"""
    caption_field: str = field(
        default="reference",
        metadata=opt("Caption to keep: reference (under the image), attribution (Commons description), alt, or all."),
    )
    reader: WitReader = field(init=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.caption_field not in CAPTION_FIELDS:
            raise ConfigError(
                f"--caption-field must be one of {', '.join(CAPTION_FIELDS)} (got {self.caption_field!r})"
            )
        self.reader = WitReader(frozenset(parse_languages(self.lang)))

    @classmethod
    def limitations(cls) -> list[str]:
        return [
            "**WIT's captions are encyclopedic.** Wikipedia reference and alt-text captions name people, places "
            "and dates more than they describe the picture; the PROPN-ratio filter removes the worst of them."
        ]

    def report(self) -> dict[str, Any]:
        return {**super().report(), "read": {"records": self.reader.records}}

    def rows(self) -> Iterator[dict[str, Any]]:
        self.reader.counts = self.skipped
        for url in self.input_files():
            split = split_from_name(base_name(url))
            for record in self.reader.read(url):
                row = self._row(record, split)
                if row is not None:
                    yield row

    def _row(self, record: dict[str, str], split: str) -> dict[str, Any] | None:
        lang, image_url = record["language"], record["image_url"].strip()
        if not image_url:
            self.skipped["no_image_url"] += 1
            return None
        reason = undecodable_reason(record["mime_type"], image_url)
        if reason is not None:
            self.skipped[reason] += 1
            return None
        captions = self._captions(record, lang)
        if not captions:
            self.skipped[f"no_{self.caption_field}_caption"] += 1
            return None
        return self.make_row(
            source_id="|".join((lang, record["page_url"], record["hierarchical_section_title"], image_url)),
            split=split,
            image_url=image_url,
            captions=captions,
            lang=lang,
            meta=_meta(record, self.caption_field),
        )

    def _captions(self, record: dict[str, str], lang: str) -> list[str]:
        names = list(CAPTION_COLUMNS) if self.caption_field == "all" else [self.caption_field]
        captions: list[str] = []
        for name in names:
            text = record[CAPTION_COLUMNS[name]].strip()
            if name == "attribution" and text:
                text, stripped = strip_language_prefixes(text, lang)
                if stripped:
                    self.repaired["attribution_language_prefix_stripped"] += 1
            if text and text not in captions:
                captions.append(text)
        return captions


def _meta(record: dict[str, str], caption_field: str) -> dict[str, Any]:
    meta: dict[str, Any] = {name: record[name] for name in META_TEXT if record.get(name)}
    for name in META_BOOL:
        value = record.get(name, "").strip().lower()
        meta[name] = True if value == "true" else False if value == "false" else None
    for name in META_INT:
        value = record.get(name, "").strip()
        meta[name] = int(value) if value.isdigit() else None
    meta["caption_field"] = caption_field
    return meta
