"""The WIT builder on the real TFDS rows and on self-made files: quoting, gzip, broken rows, layouts."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap

import fsspec
import pytest

from capbuild.build import BuildRequest, run_build
from capbuild.builders.commons import strip_language_prefixes
from capbuild.builders.wit import WitBuilder
from capbuild.errors import CapbuildError
from capbuild.stages.text.records import counts_by_spec
from capbuild.table import read_parts
from tests.wit_files import wit_record, wit_text, write_wit


def _rows(builder: WitBuilder) -> list[dict]:
    return list(builder.rows())


def test_real_rows_with_embedded_newline(realdata):
    source = realdata / "wit" / "tfds_wit_dummy_train-00000-of-00009.tsv"
    builder = WitBuilder(lang="es,de,ru", inputs=[str(source)], caption_field="attribution")
    rows = _rows(builder)
    assert [r["lang"] for r in rows] == ["es", "de", "ru"]
    # Row 1's context field holds a newline inside quotes: it must not cut the file into more records.
    assert builder.reader.records == 3 and builder.skipped == {}
    assert [r["caption"] for r in rows] == [
        "Logo do Movemento Galego ao Socialismo",
        "Lesser bulldog bat (Noctilio albiventris)",
        "Юбилейная монета Украины",
    ]
    meta = json.loads(rows[1]["meta"])
    assert meta["is_main_image"] is True and meta["attribution_passes_lang_id"] is False
    assert meta["original_width"] == 2000 and meta["original_height"] == 1636
    assert meta["mime_type"] == "image/jpeg" and meta["page_title"] == "Kleines Hasenmaul"
    assert rows[0]["image_url"] == "https://upload.wikimedia.org/wikipedia/commons/0/04/MGS_logo.JPG"


def test_real_rows_default_reference_caption_is_empty_there(realdata):
    source = realdata / "wit" / "tfds_wit_dummy_train-00000-of-00009.tsv"
    builder = WitBuilder(lang="de", inputs=[str(source)])
    assert _rows(builder) == []
    assert builder.skipped == {"language_not_selected": 2, "no_reference_caption": 1}


def test_truncated_row_in_the_middle_of_a_gzipped_file(tmp_path):
    before = [wit_record("it", n) for n in range(3)]
    after = [wit_record("it", n) for n in range(3, 6)]
    head, tail = wit_text(before), wit_text(after, header=False)
    # Cut mid-field, inside an opened quote: a reader that trusts the quote would swallow what follows.
    truncated = 'it\thttps://it.wikipedia.org/wiki/Rotta\thttps://upload.wikimedia.org/x.jpg\tRotta\t"Sezione con\n'
    short = "it\thttps://it.wikipedia.org/wiki/Corta\thttps://upload.wikimedia.org/y.jpg\tCorta\n"
    path = write_wit(tmp_path / "wit_v1.train.all-00000-of-00010.tsv.gz", head + truncated + short + tail)
    builder = WitBuilder(lang="it", inputs=[str(path)])
    rows = _rows(builder)
    assert [r["caption"] for r in rows] == [f"riferimento it {n}" for n in range(6)]
    assert builder.skipped == {"malformed_row": 2}
    assert {r["split"] for r in rows} == {"train"}


def test_kaggle_layout_with_18_columns(tmp_path):
    records = [wit_record("it", 1), wit_record("en", 2)]
    path = write_wit(tmp_path / "train-00000-of-00005.tsv", wit_text(records, kaggle=True))
    rows = _rows(WitBuilder(lang="it", inputs=[str(path)]))
    assert len(rows) == 1 and rows[0]["caption"] == "riferimento it 1"


def test_file_without_header(tmp_path):
    path = write_wit(tmp_path / "part.tsv", wit_text([wit_record("it", 1), wit_record("it", 2)], header=False))
    rows = _rows(WitBuilder(lang="it", inputs=[str(path)]))
    assert [r["caption"] for r in rows] == ["riferimento it 1", "riferimento it 2"]


def test_italian_arabic_mix_keeps_the_languages_asked_for(tmp_path):
    records = [
        wit_record("it", 1),
        wit_record("ar", 2, caption_reference_description="صورة لمدينة دمشق القديمة"),
        wit_record("fr", 3),
        wit_record("ar", 4, caption_reference_description="جامع الأزهر في القاهرة"),
    ]
    path = write_wit(tmp_path / "mix.tsv.gz", wit_text(records))
    only_ar = WitBuilder(lang="ar", inputs=[str(path)])
    assert [r["caption"] for r in _rows(only_ar)] == ["صورة لمدينة دمشق القديمة", "جامع الأزهر في القاهرة"]
    assert only_ar.skipped == {"language_not_selected": 2}
    both = _rows(WitBuilder(lang="it,ar", inputs=[str(path)]))
    assert [r["lang"] for r in both] == ["it", "ar", "ar"]
    assert len({r["key"] for r in both}) == 3


def test_undecodable_mime_types_are_skipped_by_reason(tmp_path):
    records = [
        wit_record("it", 1, mime_type="image/svg+xml", image_url="https://upload.wikimedia.org/a/Map.svg"),
        wit_record("it", 2, mime_type="image/png", image_url="https://upload.wikimedia.org/a/Map.png"),
        wit_record("it", 3, mime_type="audio/ogg", image_url="https://upload.wikimedia.org/a/Inno.ogg"),
        wit_record("it", 4, mime_type="image/svg+xml", image_url="https://upload.wikimedia.org/a/Flag.svg"),
        wit_record("it", 5, mime_type="video/webm", image_url="https://upload.wikimedia.org/a/Film.webm"),
    ]
    builder = WitBuilder(lang="it", inputs=[str(write_wit(tmp_path / "m.tsv", wit_text(records)))])
    rows = _rows(builder)
    assert [r["source_id"].rsplit("/", 1)[1] for r in rows] == ["Map.png"]
    assert builder.skipped == {"mime image/svg+xml": 2, "mime audio/ogg": 1, "mime video/webm": 1}


def test_caption_fields_and_attribution_prefixes(tmp_path):
    records = [
        wit_record(
            "it",
            1,
            caption_reference_description="Il Duomo di Milano",
            caption_attribution_description="English: Milan Cathedral Italiano: Il Duomo visto dalla piazza",
            caption_alt_text_description="Foto del Duomo",
        ),
        wit_record("it", 2, caption_reference_description="", caption_attribution_description="Italiano: Un ponte"),
    ]
    path = str(write_wit(tmp_path / "c.tsv", wit_text(records)))
    attribution = WitBuilder(lang="it", inputs=[path], caption_field="attribution")
    assert [r["caption"] for r in _rows(attribution)] == ["Il Duomo visto dalla piazza", "Un ponte"]
    assert attribution.repaired == {"attribution_language_prefix_stripped": 2}
    alt = WitBuilder(lang="it", inputs=[path], caption_field="alt")
    assert [r["caption"] for r in _rows(alt)] == ["Foto del Duomo"]
    assert alt.skipped == {"no_alt_caption": 1}
    every = _rows(WitBuilder(lang="it", inputs=[path], caption_field="all"))
    assert every[0]["captions"] == ["Il Duomo di Milano", "Il Duomo visto dalla piazza", "Foto del Duomo"]
    assert every[1]["captions"] == ["Un ponte"]
    with pytest.raises(CapbuildError, match="--caption-field"):
        WitBuilder(lang="it", inputs=[path], caption_field="title")


@pytest.mark.parametrize(
    ("text", "lang", "expected"),
    [
        ("English: Lesser bulldog bat", "de", "Lesser bulldog bat"),
        ("English: Coin of Ukraine Русский: Юбилейная монета Украины", "ru", "Юбилейная монета Украины"),
        ("English: Coin of Ukraine Русский: Юбилейная монета Украины", "it", "Coin of Ukraine"),
        ("Deutsch: Ein Hund English: A dog", "en", "A dog"),
        ("A P-43 Lancer over Esler Field", "en", "A P-43 Lancer over Esler Field"),
        ("Nota bene: Francesco Totti", "it", "Nota bene: Francesco Totti"),
        ("עברית: כותל", "iw", "כותל"),
    ],
)
def test_strip_language_prefixes(text, lang, expected):
    assert strip_language_prefixes(text, lang)[0] == expected


def test_booleans_and_empty_fields_in_meta(tmp_path):
    record = wit_record("it", 1, is_main_image="false", original_width="", section_title="", page_title="")
    rows = _rows(WitBuilder(lang="it", inputs=[str(write_wit(tmp_path / "b.tsv", wit_text([record])))]))
    meta = json.loads(rows[0]["meta"])
    assert meta["is_main_image"] is False and meta["original_width"] is None and meta["original_height"] == 480
    assert "section_title" not in meta and "page_title" not in meta


def test_remote_files_through_fsspec_glob():
    fs = fsspec.filesystem("memory")
    for i in range(2):
        with fs.open(f"/wit-test/wit_v1.train.all-0000{i}-of-00002.tsv.gz", "wb") as f:
            f.write(gzip.compress(wit_text([wit_record("it", 10 * i + n) for n in range(3)]).encode()))
    try:
        rows = _rows(WitBuilder(lang="it", inputs=["memory://wit-test/wit_v1.train.all-*.tsv.gz"]))
    finally:
        fs.rm("/wit-test", recursive=True)
    assert [r["caption"] for r in rows] == [f"riferimento it {n}" for n in (0, 1, 2, 10, 11, 12)]


def test_missing_input_says_so(tmp_path):
    builder = WitBuilder(lang="it", inputs=[str(tmp_path / "nothing-*.tsv.gz")])
    with pytest.raises(CapbuildError, match="matches no file"):
        _rows(builder)


def test_not_a_wit_file(tmp_path):
    path = tmp_path / "other.tsv"
    path.write_text("a\tb\tc\n1\t2\t3\n")
    with pytest.raises(CapbuildError, match="not a WIT TSV file"):
        _rows(WitBuilder(lang="it", inputs=[str(path)]))


def test_wit_build_to_caption_table_is_deterministic(tmp_path):
    records = [wit_record("it", n) for n in range(5)] + [wit_record("it", 2)]
    path = str(write_wit(tmp_path / "wit_v1.train.tsv", wit_text(records)))
    tables = []
    for out in ("a", "b"):
        manifest = run_build(BuildRequest(WitBuilder(lang="it", inputs=[path]), tmp_path / out, images=None))
        tables.append(read_parts(tmp_path / out / "captions"))
    assert tables[0].equals(tables[1]) and len(tables[0]) == 5
    text = manifest["counts"]["text"]
    assert text["source_rows"] == 6 and counts_by_spec(text)["unique_key"]["dropped"] == 1
    assert text["builder"]["read"] == {"records": 6}


# Peak RSS from /proc (VmHWM): unlike ru_maxrss, it starts afresh at exec, not at the parent's peak.
MEMORY_SCRIPT = textwrap.dedent(
    """
    import re, sys
    from capbuild.builders.wit import WitBuilder
    rows = sum(1 for _ in WitBuilder(lang="it", inputs=[sys.argv[1]]).rows())
    peak_kb = int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1))
    print(rows, peak_kb)
    """
)


def _peak(path) -> tuple[int, float]:
    """Rows read and peak RSS in MB of a process that streams `path` through the WIT builder."""
    command = [sys.executable, "-c", MEMORY_SCRIPT, str(path)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    rows, peak_kb = (int(v) for v in result.stdout.split())
    return rows, peak_kb / 1024


@pytest.mark.slow
def test_memory_stays_flat_on_200k_rows(tmp_path):
    context = "Testo lungo della sezione, ripetuto per dare al file un peso realistico. " * 8
    templates = [
        wit_text([wit_record(lang, "{n}", context_section_description=f"{context}\n{{n}}")], header=False)
        for lang in ("en", "it")
    ]
    text = wit_text([]) + "".join(templates[n % 2].format(n=n) for n in range(200_000))
    assert len(text) > 150e6  # a reader that loads the file (as pandas does) grows by more than that
    path = tmp_path / "big.tsv.gz"
    path.write_bytes(gzip.compress(text.encode(), compresslevel=1))
    del text
    small = write_wit(tmp_path / "small.tsv.gz", wit_text([wit_record("it", 1)]))
    rows, peak = _peak(path)
    assert rows == 100_000
    _, baseline = _peak(small)
    assert peak - baseline < 40, f"peak RSS {peak:.0f} MB on 200,000 rows against {baseline:.0f} MB on one row"
