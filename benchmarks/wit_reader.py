"""WIT reader with language selection against pandas.read_csv + the same selection: rows/s and peak memory.

Generates a gzipped WIT TSV (17 columns, quoted context fields with embedded newlines, 10 languages
in equal shares), then runs each reader in its own process and reports its time and peak RSS.
capbuild is also run on a file a tenth the size, to show that its memory does not follow file size.
Peak memory is the process's VmHWM, imports included.

    .venv/bin/python benchmarks/wit_reader.py --rows 1000000 --lang it
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from capbuild.builders.wit_reader import WIT_COLUMNS

LANGUAGES = ("en", "it", "ar", "de", "fr", "es", "id", "az", "ru", "ja")
CONTEXT = "Il testo della pagina descrive il soggetto dell'immagine con qualche frase di contesto. " * 4

# (imports, timed body) per reader; each runs in a fresh process.
RUNNERS = {
    "capbuild WitReader": (
        "from capbuild.builders.wit_reader import WitReader",
        "rows = sum(1 for _ in WitReader(frozenset(LANGS)).read(PATH))",
    ),
    "capbuild WitBuilder.rows()": (
        "from capbuild.builders.wit import WitBuilder",
        "rows = sum(1 for _ in WitBuilder(lang=','.join(LANGS), inputs=[PATH]).rows())",
    ),
    "pandas.read_csv + isin": (
        "import pandas as pd",
        "frame = pd.read_csv(PATH, sep='\\t', compression='gzip', dtype=str, keep_default_na=False)\n"
        "selected = frame[frame['language'].isin(LANGS)]\n"
        "rows = len(selected)",
    ),
}
# Peak RSS from /proc (VmHWM), which starts afresh at exec (ru_maxrss would carry the parent's peak).
HARNESS = """
import re, sys, time
{imports}
PATH, LANGS = sys.argv[1], sys.argv[2].split(",")
started = time.perf_counter()
{body}
seconds = time.perf_counter() - started
print(rows, seconds, re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
"""


def write_wit(path: Path, rows: int) -> None:
    """A gzipped WIT file; every 7th context field holds a newline (so it is quoted)."""
    templates = []
    for lang in LANGUAGES:
        buffer = io.StringIO()
        record = {c: "" for c in WIT_COLUMNS}
        record.update(
            language=lang,
            page_url=f"https://{lang}.wikipedia.org/wiki/Pagina_{{n}}",
            image_url=f"https://upload.wikimedia.org/wikipedia/commons/a/ab/Image_{lang}_{{n}}.jpg",
            page_title="Pagina {n}",
            hierarchical_section_title="Pagina {n}",
            caption_reference_description=f"didascalia {lang} numero {{n}}",
            caption_attribution_description="English: attribution {n}",
            mime_type="image/jpeg",
            original_height="480",
            original_width="640",
            is_main_image="true",
            attribution_passes_lang_id="false",
            page_changed_recently="true",
            context_page_description=CONTEXT + "{n}",
            context_section_description=CONTEXT + "\nsezione {n}",
        )
        csv.writer(buffer, delimiter="\t", lineterminator="\n").writerow([record[c] for c in WIT_COLUMNS])
        templates.append(buffer.getvalue())
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as f:
        f.write("\t".join(WIT_COLUMNS) + "\n")
        for n in range(rows):
            f.write(templates[n % len(templates)].format(n=n))


def run(name: str, path: Path, langs: str) -> dict[str, float]:
    imports, body = RUNNERS[name]
    script = HARNESS.format(imports=imports, body=body)
    out = subprocess.run([sys.executable, "-c", script, str(path), langs], capture_output=True, text=True, check=True)
    rows, seconds, max_rss_kb = out.stdout.split()
    return {"rows": int(rows), "seconds": float(seconds), "peak_rss_mb": int(max_rss_kb) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--lang", default="it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "wit_big.tsv.gz", Path(tmp) / "wit_small.tsv.gz"
        started = time.perf_counter()
        write_wit(big, args.rows)
        write_wit(small, args.rows // 10)
        print(f"generated {args.rows:,} rows ({big.stat().st_size / 1e6:.0f} MB gzipped) "
              f"in {time.perf_counter() - started:.0f} s", file=sys.stderr)  # fmt: skip
        results = {name: run(name, big, args.lang) for name in RUNNERS}
        results[f"capbuild WitReader, {args.rows // 10:,} rows"] = run("capbuild WitReader", small, args.lang)
    pandas = results["pandas.read_csv + isin"]
    pandas_rate = args.rows / pandas["seconds"]
    print(f"| reader (--lang {args.lang}) | rows in file | selected | seconds | rows read/s | peak RSS MB | "
          "rows/s vs pandas |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        rows_read = args.rows // 10 if name.endswith(" rows") else args.rows
        rate = rows_read / r["seconds"]
        print(f"| {name} | {rows_read:,} | {r['rows']:,} | {r['seconds']:.1f} | {rate:,.0f} | "
              f"{r['peak_rss_mb']:.0f} | {rate / pandas_rate:.2f}x |")  # fmt: skip
    print(json.dumps(results), file=sys.stderr)


if __name__ == "__main__":
    main()
