"""WAP (WikipediaArabicPairs): Arabic captions of Wikipedia images, from the Arabic CLIP authors.

Read in its published layout (one CSV with `source`, `link`, `caption`, `extension`) or in the
headerless `caption,url` CSV of the Arabic CLIP download script. The preprocessing the authors
applied is available to any Arabic build as filters: `--filter ar-normalize --filter ar-min-tokens=3`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from capbuild.builders.base import register
from capbuild.builders.inputs import open_text
from capbuild.builders.mime import mime_from_name
from capbuild.builders.pairs import PairsBuilder
from capbuild.errors import ConfigError, InputError

PUBLISHED_COLUMNS = ("source", "link", "caption", "extension")
HEADERLESS_COLUMNS = ["caption", "link"]


@register
@dataclass
class WapBuilder(PairsBuilder):
    """WAP's CSV files; `lang` is Arabic."""

    name = "wap"
    summary = "WAP (WikipediaArabicPairs) CSV, published layout or the headerless caption,url one; Arabic."
    example = (
        "capbuild wap 'WikipediaArabicPairs(WAP).csv' --filter ar-normalize --filter ar-min-tokens=3 --out ar-wap/"
    )
    # The captions are Wikipedia text and the images Wikimedia Commons files: CC BY-SA (per-file
    # licences on Commons); the WAP card states no licence of its own.
    licence = "cc-by-sa-4.0"
    homepage = "https://huggingface.co/datasets/LinaAlhuri/WikipediaArabicPairs"
    citation = """@misc{alhuri2023wap,
  title={WikipediaArabicPairs (WAP): Arabic image-caption pairs from Wikipedia},
  author={Alhuri, Lina},
  year={2023},
  howpublished={\\url{https://huggingface.co/datasets/LinaAlhuri/WikipediaArabicPairs}},
  note={Arabic CLIP project}
}"""
    default_lang = "ar"
    url_col: str | None = "link"
    caption_col: str = "caption"
    format: str | None = "csv"
    source: str = "wap"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lang != "ar":
            raise ConfigError(f"WAP's captions are Arabic; --lang must be ar (got {self.lang!r})")

    @classmethod
    def options(cls) -> tuple[str, ...]:
        """WAP's columns and format are fixed: of the pairs options it takes none."""
        return ()

    def columns_for(self, url: str) -> list[str] | None:
        """None for the published layout (header row); `caption,link` for the headerless one."""
        with open_text(url) as f:
            first = f.readline().lstrip("\ufeff").strip().lower()
        names = [name.strip().strip('"') for name in first.split(",")]
        if "link" in names and "caption" in names:
            return None
        if len(names) >= 2 and any(n.startswith(("http://", "https://")) for n in names):
            self.repaired["headerless_caption_url_layout"] += 1
            return HEADERLESS_COLUMNS
        raise InputError(
            f"{url} is neither WAP's published CSV (header {','.join(PUBLISHED_COLUMNS)}) nor the headerless "
            "caption,url layout; for other tables use `capbuild pairs`"
        )

    def declared_mime_type(self, record: dict[str, Any]) -> str | None:
        extension = str(record.get("extension") or "").strip().lstrip(".")
        return mime_from_name(f"image.{extension}") if extension else None
