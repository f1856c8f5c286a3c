"""Per-host politeness for img2dataset's downloads, which has none (img2dataset issues #62, #452).

img2dataset fetches every URL through `img2dataset.downloader.download_image`; `install()` replaces
it, in each worker process, with `polite_download_image`, which

- starts requests to one host at least 1/rps seconds apart, across all threads and processes of
  the build: the next free time of each host is kept in a small file of a folder they share, read
  and written under an exclusive flock (so no one-second window ever sees more than rps requests);
- on HTTP 429, or 503 with Retry-After, makes the whole build wait what Retry-After says (default
  1 s, at most MAX_RETRY_AFTER) before its next request to that host, then retries the row, up to
  POLITE_ATTEMPTS times;
- sends an honest User-Agent, "capbuild/VERSION img2dataset/VERSION (TOKEN)", and honours
  X-Robots-Tag directives aimed at all robots or at TOKEN, as img2dataset does.

A row still failing after that keeps its error ("HTTP Error 429: ...") and `capbuild retry` can
fetch it later. file:// URLs are neither paced nor retried.
"""

from __future__ import annotations

import email.utils
import fcntl
import functools
import hashlib
import io
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from capbuild import __version__

ENV_PER_HOST_RPS = "CAPBUILD_PER_HOST_RPS"
ENV_PACING_DIR = "CAPBUILD_PACING_DIR"
POLITE_ATTEMPTS = 10
DEFAULT_RETRY_AFTER = 1.0
MAX_RETRY_AFTER = 120.0
# Added to the spacing so that network jitter never packs rps + 1 requests into a second at the server:
# 5 ms, or 5 % of the spacing when that is less (so that a high rate is not capped at 200 requests/s).
JITTER_MARGIN = 0.005
JITTER_FRACTION = 0.05


class HostPacer:
    """Keeps requests to each host `1 / rps` seconds apart and pauses a host on Retry-After, for every
    thread and process that uses the same `folder` (time.monotonic is system-wide on Linux and macOS).

    Unpaced (rps 0), a host's file exists only once a Retry-After paused it, so a request to a host
    never paused costs one failed open() and takes no lock.
    """

    def __init__(self, rps: float | None, folder: Path) -> None:
        self.interval = 1.0 / rps + min(JITTER_MARGIN, JITTER_FRACTION / rps) if rps else 0.0
        self.folder = folder
        self._paths: dict[str, str] = {}

    def _path(self, host: str) -> str:
        path = self._paths.get(host)
        if path is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self._paths[host] = str(self.folder / hashlib.blake2b(host.encode(), digest_size=8).hexdigest())
        return path

    @contextmanager
    def _locked(self, host: str, flags: int = os.O_RDWR | os.O_CREAT, lock: int = fcntl.LOCK_EX) -> Iterator[int]:
        """The host's file descriptor, locked (released when it closes)."""
        fd = os.open(self._path(host), flags, 0o644)
        try:
            fcntl.flock(fd, lock)
            yield fd
        finally:
            os.close(fd)

    @staticmethod
    def _next_free(fd: int) -> float:
        text = os.pread(fd, 64, 0).strip()
        return float(text) if text else 0.0

    @staticmethod
    def _set_next_free(fd: int, value: float) -> None:
        os.pwrite(fd, repr(value).encode().ljust(32), 0)  # fixed width: nothing left to truncate

    def wait(self, host: str) -> float:
        """Block until a request to `host` may start (paced callers take turns: the lock is held meanwhile).
        Returns the time.monotonic() at which the request was let go: grants to one host are at least
        `1 / rps` apart."""
        if not self.interval:
            try:
                with self._locked(host, os.O_RDONLY, fcntl.LOCK_SH) as fd:
                    paused_until = self._next_free(fd)
            except FileNotFoundError:
                return time.monotonic()
            if (delay := paused_until - time.monotonic()) > 0:
                time.sleep(delay)
            return time.monotonic()
        with self._locked(host) as fd:
            next_free = self._next_free(fd)
            if (delay := next_free - time.monotonic()) > 0:
                time.sleep(delay)
            granted = time.monotonic()
            self._set_next_free(fd, max(next_free, granted + self.interval))
            return granted

    def pause(self, host: str, seconds: float) -> None:
        """No request to `host` for `seconds` from now (a 429/503's Retry-After)."""
        with self._locked(host) as fd:
            self._set_next_free(fd, max(self._next_free(fd), time.monotonic() + seconds))


_pacer: HostPacer | None = None


def retry_after_seconds(value: str | None) -> float:
    """Retry-After as seconds: a number of seconds or an HTTP date; the default when absent or bad."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return DEFAULT_RETRY_AFTER
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@functools.cache
def user_agent(token: str | None) -> str:
    """The User-Agent header (cached: reading a package's version scans the installed distributions)."""
    agent = f"capbuild/{__version__} img2dataset/{metadata.version('img2dataset')}"
    return f"{agent} ({token})" if token else agent


def polite_download_image(
    row: tuple[Any, str], timeout: float, user_agent_token: str | None, disallowed_header_directives: list[str] | None
) -> tuple[Any, io.BytesIO | None, str | None]:
    """img2dataset's download_image contract: (key, image bytes or None, error message or None)."""
    from img2dataset.downloader import is_disallowed

    key, url = row
    host = urlsplit(url).hostname or ""
    request = urllib.request.Request(url, headers={"User-Agent": user_agent(user_agent_token)})
    attempt = 0
    while True:
        attempt += 1
        if host and _pacer is not None:
            _pacer.wait(host)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if disallowed_header_directives and is_disallowed(
                    response.headers, user_agent_token, disallowed_header_directives
                ):
                    return key, None, "Use of image disallowed by X-Robots-Tag directive"
                return key, io.BytesIO(response.read()), None
        except urllib.error.HTTPError as error:
            throttled = error.code == 429 or (error.code == 503 and "Retry-After" in error.headers)
            if host and _pacer is not None and throttled and attempt < POLITE_ATTEMPTS:
                _pacer.pause(host, retry_after_seconds(error.headers.get("Retry-After")))
                continue
            return key, None, str(error)
        except Exception as error:  # img2dataset records any failure as the row's error message
            return key, None, str(error)


def install(rps: float | None, folder: Path) -> None:
    """Route img2dataset's downloads in this process through `polite_download_image`, paced with
    the other processes that share `folder`."""
    global _pacer
    import img2dataset.downloader

    _pacer = HostPacer(rps, folder)
    img2dataset.downloader.download_image = polite_download_image
