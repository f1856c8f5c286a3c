"""The on-disk translation cache: sqlite, keyed by (model and decoding fingerprint, source language,
target language, normalised text), safe to share between processes and builds."""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import unicodedata
from collections.abc import Iterable
from pathlib import Path

CACHE_FILE = "translations.sqlite3"
CACHE_ENV = "CAPBUILD_MT_CACHE"
_WHITESPACE = re.compile(r"\s+")
_QUERY_CHUNK = 500


def default_cache_dir() -> Path:
    """$CAPBUILD_MT_CACHE, else the user cache folder (e.g. ~/.cache/capbuild/mt on Linux)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("capbuild")) / "mt"


def normalise(text: str) -> str:
    """NFC and collapsed whitespace: texts that differ only so translate the same. Case is kept."""
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def cache_key(fingerprint: str, src_lang: str, tgt_lang: str, text: str) -> bytes:
    return hashlib.blake2b(f"{fingerprint}\x1f{src_lang}\x1f{tgt_lang}\x1f{text}".encode(), digest_size=16).digest()


class TranslationCache:
    """get_many / put_many over one sqlite file; every put is committed, so an interrupted
    translation keeps what it finished."""

    def __init__(self, folder: Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / CACHE_FILE
        self._db = sqlite3.connect(self.path, timeout=120)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS translations (key BLOB PRIMARY KEY, translation TEXT NOT NULL)")
        self._db.commit()

    def get_many(self, keys: list[bytes]) -> dict[bytes, str]:
        found: dict[bytes, str] = {}
        for start in range(0, len(keys), _QUERY_CHUNK):
            chunk = keys[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, translation FROM translations WHERE key IN ({marks})", chunk)
            found.update(rows)
        return found

    def put_many(self, items: Iterable[tuple[bytes, str]]) -> None:
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO translations (key, translation) VALUES (?, ?)", items)

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM translations").fetchone()[0]

    def close(self) -> None:
        self._db.close()
