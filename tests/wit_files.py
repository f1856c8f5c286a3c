"""Self-made WIT TSV files: records with chosen fields, written the way WIT quotes them."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

from capbuild.builders.wit_reader import KAGGLE_COLUMNS, WIT_COLUMNS


def wit_record(lang: str, n: int, **fields: Any) -> dict[str, str]:
    """A plausible WIT record for page N in `lang`; keyword arguments override fields."""
    record = {
        "language": lang,
        "page_url": f"https://{lang}.wikipedia.org/wiki/Pagina_{n}",
        "image_url": f"https://upload.wikimedia.org/wikipedia/commons/a/ab/Image_{lang}_{n}.jpg",
        "page_title": f"Pagina {n}",
        "section_title": "",
        "hierarchical_section_title": f"Pagina {n}",
        "caption_reference_description": f"riferimento {lang} {n}",
        "caption_attribution_description": f"English: attribution {n}",
        "caption_alt_text_description": "",
        "mime_type": "image/jpeg",
        "original_height": "480",
        "original_width": "640",
        "is_main_image": "true",
        "attribution_passes_lang_id": "false",
        "page_changed_recently": "true",
        "context_page_description": f"Testo della pagina {n}.",
        "context_section_description": "",
        "caption_title_and_reference_description": f"Pagina {n} [SEP] riferimento {lang} {n}",
    }
    record.update({k: str(v) for k, v in fields.items()})
    return record


def wit_text(records: list[dict[str, str]], kaggle: bool = False, header: bool = True) -> str:
    columns = KAGGLE_COLUMNS if kaggle else WIT_COLUMNS
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    if header:
        writer.writerow(columns)
    for record in records:
        writer.writerow([record[c] for c in columns])
    return buffer.getvalue()


def write_wit(path: Path, text: str) -> Path:
    """Write TSV text, gzipped when the name ends in .gz."""
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path
