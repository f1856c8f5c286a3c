"""The on-disk translation cache: sqlite, keyed by (model and decoding fingerprint, source language,
target language, normalised text), safe to share between processes and builds.

Several processes (Ray actors, two builds) may create, read and write one cache at once, and any of
them may be killed mid-write:
- a new cache file is made complete (WAL mode, table) under a temporary name and hard-linked into
  place, so no process ever sees a half-made one and two creators cannot both win;
- writes open their transaction with BEGIN IMMEDIATE, which takes the write lock up front and so
  waits on the busy timeout (a deferred transaction that upgrades to a write in WAL mode gets
  SQLITE_BUSY at once, whatever the timeout), and every statement is retried a bounded number of
  times on SQLITE_BUSY / SQLITE_LOCKED;
- a killed writer's uncommitted transaction is discarded by SQLite (its locks die with it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import sqlite3
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

CACHE_FILE = "translations.sqlite3"
CACHE_ENV = "CAPBUILD_MT_CACHE"
_WHITESPACE = re.compile(r"\s+")
_QUERY_CHUNK = 500
BUSY_TIMEOUT = 30.0  # seconds sqlite itself waits for a lock
RETRIES = 6  # attempts of one statement that still meets a lock after BUSY_TIMEOUT
_SCHEMA = "CREATE TABLE IF NOT EXISTS translations (key BLOB PRIMARY KEY, translation TEXT NOT NULL)"
_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (primary codes of the extended ones too)
T = TypeVar("T")


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
        if not self.path.exists():
            _create(self.path)
        # Autocommit: reads are single statements, writes open their own BEGIN IMMEDIATE.
        self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)

    def get_many(self, keys: list[bytes]) -> dict[bytes, str]:
        found: dict[bytes, str] = {}
        for start in range(0, len(keys), _QUERY_CHUNK):
            chunk = keys[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, translation FROM translations WHERE key IN ({marks})"
            found.update(with_retries(lambda q=query, c=chunk: self._db.execute(q, c).fetchall()))
        return found

    def put_many(self, items: Iterable[tuple[bytes, str]]) -> None:
        rows = list(items)
        if rows:
            with_retries(lambda: self._write(rows))

    def _write(self, rows: list[tuple[bytes, str]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO translations (key, translation) VALUES (?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    def __len__(self) -> int:
        return with_retries(lambda: self._db.execute("SELECT COUNT(*) FROM translations").fetchone()[0])

    def close(self) -> None:
        self._db.close()


def with_retries(action: Callable[[], T], retries: int = RETRIES) -> T:
    """`action()`, run again (after a short random pause) while sqlite answers busy or locked."""
    for attempt in range(retries):
        try:
            return action()
        except sqlite3.OperationalError as err:
            if not _busy(err) or attempt == retries - 1:
                raise
            time.sleep(min(1.0, 0.05 * 2**attempt) * (1 + random.random()))
    raise AssertionError("unreachable")


def _busy(err: sqlite3.OperationalError) -> bool:
    code = getattr(err, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(err) or "busy" in str(err)


def _create(path: Path) -> None:
    """Make the cache file at `path` whole, under a temporary name, then link it into place; a
    process that loses the race to another creator uses the other's file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # kept in the file: every later connection is in WAL mode
            db.execute(_SCHEMA)
        finally:
            db.close()
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
