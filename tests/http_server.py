"""A local HTTP server for tests: serves files from a folder on 127.0.0.1, with routes that fail."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Behaviour:
    """How the server answers: files to serve, paths that answer 404/500, paths that stall,
    and a delay before every answer (to make a build slow enough to interrupt)."""

    root: Path
    status: dict[str, int] = field(default_factory=dict)
    slow: dict[str, float] = field(default_factory=dict)
    delay: float = 0.0
    requests: list[str] = field(default_factory=list)
    # Extra response headers per path (e.g. {"x.jpg": {"X-Robots-Tag": "noai"}}).
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    # Status answered to the first request of a path only (a transient failure), no Retry-After.
    fail_first: dict[str, int] = field(default_factory=dict)
    # Answer 429 with Retry-After when more than `max_rps` requests arrived in the last second.
    max_rps: float | None = None
    retry_after: int = 1
    # (time.monotonic(), path, status) of every request, in arrival order.
    log: list[tuple[float, str, int]] = field(default_factory=list)


@contextmanager
def serve(behaviour: Behaviour) -> Iterator[str]:
    """Run the server in a thread; yields its base URL (http://127.0.0.1:PORT)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0].lstrip("/")
            now = time.monotonic()
            with lock:
                behaviour.requests.append(path)
                code = _throttled_or_transient(behaviour, path, now)
                behaviour.log.append((now, path, code or 200))
            if code == 429:
                self.send_response(code)
                self.send_header("Retry-After", str(behaviour.retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            time.sleep(behaviour.delay + behaviour.slow.get(path, 0.0))
            code = code or behaviour.status.get(path)
            target = behaviour.root / path
            if code is None and not target.is_file():
                code = 404
            if code is not None:
                self.send_error(code)
                return
            body = target.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            for name, value in behaviour.headers.get(path, {}).items():
                self.send_header(name, value)
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    lock = threading.Lock()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _throttled_or_transient(behaviour: Behaviour, path: str, now: float) -> int | None:
    """429 when the last second already saw `max_rps` answered requests; the first-attempt status
    of a `fail_first` path; else None. Called under the server's lock."""
    if behaviour.max_rps is not None:
        recent = sum(1 for t, _, code in behaviour.log if now - t < 1.0 and code != 429)
        if recent >= behaviour.max_rps:
            return 429
    if path in behaviour.fail_first and path not in {p for _, p, _ in behaviour.log}:
        return behaviour.fail_first[path]
    return None
