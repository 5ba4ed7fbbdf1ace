"""Probes and documents over HTTP, served from a daemon thread.

The agent serves /healthz, /readyz and /metrics; named's supervisor serves
/readyz, /livez and /zones. A probe answers 200 or 503 with one line saying why;
a document is served as it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Probe = Callable[[], tuple[bool, str]]
Document = tuple[Callable[[], str], str]  # (body, content type)
PROMETHEUS = "text/plain; version=0.0.4"


@dataclass(frozen=True)
class Endpoints:
    """The agent's endpoints."""

    healthy: Probe
    ready: Probe
    metrics: Callable[[], str]


def serve(address: str, port: int, endpoints: Endpoints) -> ThreadingHTTPServer:
    return serve_routes(
        address,
        port,
        probes={"/healthz": endpoints.healthy, "/readyz": endpoints.ready},
        documents={"/metrics": (endpoints.metrics, PROMETHEUS)},
    )


def serve_routes(
    address: str,
    port: int,
    *,
    probes: Mapping[str, Probe],
    documents: Mapping[str, Document] | None = None,
) -> ThreadingHTTPServer:
    """Serve each probe and document at its path (the query string is ignored)."""
    served = dict(documents or {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in served:
                body, content_type = served[path]
                self._reply(200, body(), content_type)
                return
            probe = probes.get(path)
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
