"""/healthz, /readyz and /metrics over HTTP, served from a daemon thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Endpoints:
    healthy: Callable[[], tuple[bool, str]]
    ready: Callable[[], tuple[bool, str]]
    metrics: Callable[[], str]


def serve(address: str, port: int, endpoints: Endpoints) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, endpoints.metrics(), "text/plain; version=0.0.4")
                return
            probe = {"/healthz": endpoints.healthy, "/readyz": endpoints.ready}.get(self.path)
            if probe is None:
                self._reply(404, "not found\n")
                return
            ok, detail = probe()
            self._reply(200 if ok else 503, f"{'ok' if ok else 'failing'}: {detail}\n")

        def _reply(self, status: int, body: str, content_type: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
