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


@contextmanager
def serve(behaviour: Behaviour) -> Iterator[str]:
    """Run the server in a thread; yields its base URL (http://127.0.0.1:PORT)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0].lstrip("/")
            behaviour.requests.append(path)
            time.sleep(behaviour.delay + behaviour.slow.get(path, 0.0))
            code = behaviour.status.get(path)
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
            self.end_headers()
            with suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
