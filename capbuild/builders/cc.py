"""Conceptual Captions: CC3M (`caption<TAB>url`) and CC12M (`url<TAB>caption`), no header, English."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from capbuild.builders.base import Builder, register, split_from_name
from capbuild.builders.inputs import base_name, open_text
from capbuild.errors import ConfigError

URL_PREFIXES = ("http://", "https://")


@register
@dataclass
class ConceptualCaptionsBuilder(Builder):
    """One row per line. The layout is told by which column holds the URL: CC3M's files
    (Train_GCC-training.tsv, Validation_GCC-1.1.0-Validation.tsv) put the caption first, CC12M's
    cc12m.tsv the URL. The source id is `cc3m:SPLIT:LINE` or `cc12m:SPLIT:LINE` (0-based line
    number, the index img2dataset users know these rows by)."""

    name = "cc"
    summary = "Conceptual Captions: CC3M (caption<TAB>url) and CC12M (url<TAB>caption) TSV files, English."
    example = "capbuild cc Train_GCC-training.tsv --out cc3m-en/"
    homepage = "https://ai.google.com/research/ConceptualCaptions/"
    citation = """@inproceedings{sharma2018conceptual,
  title={Conceptual Captions: A Cleaned, Hypernymed, Image Alt-text Dataset For Automatic Image Captioning},
  author={Sharma, Piyush and Ding, Nan and Goodman, Sebastian and Soricut, Radu},
  booktitle={Proceedings of ACL},
  pages={2556--2565},
  year={2018}
}
@inproceedings{changpinyo2021cc12m,
  title={Conceptual 12M: Pushing Web-Scale Image-Text Pre-Training To Recognize Long-Tail Visual Concepts},
  author={Changpinyo, Soravit and Sharma, Piyush and Ding, Nan and Soricut, Radu},
  booktitle={CVPR},
  year={2021}
}"""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lang != "en":
            raise ConfigError(
                f"Conceptual Captions is English but the captions' language is {self.lang!r}: add "
                f"--translate to translate them into --lang {self.lang}, or use `capbuild pairs` for a "
                "translated copy in its own table"
            )

    def rows(self) -> Iterator[dict[str, Any]]:
        for url in self.input_files():
            name = base_name(url)
            split = split_from_name(name)
            with open_text(url) as lines:
                for number, line in enumerate(lines):
                    row = self._row(line, split, number, name)
                    if row is not None:
                        yield row

    def _row(self, line: str, split: str, number: int, name: str) -> dict[str, Any] | None:
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) != 2:
            self.skipped["malformed_line" if line.strip() else "empty_line"] += 1
            return None
        first, second = (f.strip() for f in fields)
        if second.startswith(URL_PREFIXES):
            variant, caption, image_url = "cc3m", first, second
        elif first.startswith(URL_PREFIXES):
            variant, caption, image_url = "cc12m", second, first
        else:
            self.skipped["no_image_url"] += 1
            return None
        if not caption:
            self.skipped["empty_caption"] += 1
            return None
        return self.make_row(
            source_id=f"{variant}:{split}:{number}",
            split=split,
            image_url=image_url,
            captions=[caption],
            meta={"variant": variant, "file": name, "line": number},
        )
