"""Probes and documents over HTTP, served from a daemon thread.

The agent serves /healthz, /readyz and /metrics; named's supervisor serves
/started, /readyz, /livez and /zones. A probe answers 200 or 503 with one line
saying why; a document is served as it is.

A start must not log probe failures: the kubelet records a Warning Event for
every failed probe, and operators learn to ignore Warnings that every start
emits. So a probe asked with `?wait=SECONDS` (the chart asks for its probe's
timeout less a second) waits up to that long for its condition while it has
never held, instead of failing at once; once it has held, it answers at once.
A route may name a fallback, answered when the wait runs out: named's startup
probe waits for readiness, then settles for liveness.

Both servers start before their containers' heavy imports (serve_starting,
from hooks/) and get their real routes once they exist (Routes.use), so the
kubelet's first startup probe finds the port open.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

Probe = Callable[[], tuple[bool, str]]
Document = tuple[Callable[[], str], str]  # (body, content type)
PROMETHEUS = "text/plain; version=0.0.4"
MAX_WAIT = 60.0  # seconds: no request holds a server thread longer
POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class Endpoints:
    """The agent's endpoints."""

    healthy: Probe
    ready: Probe
    metrics: Callable[[], str]


@dataclass
class Route:
    """One probe: its condition, what it answers when a wait runs out, and whether the
    condition has held yet (until it has, a request may wait for it)."""

    probe: Probe
    fallback: Probe | None = None
    held: bool = False


@dataclass
class Routes:
    """What a server answers, by path. Replaced whole while the server runs: a request that
    waits looks the route up again on every poll, so it sees the replacement."""

    probes: dict[str, Route] = field(default_factory=dict)
    documents: dict[str, Document] = field(default_factory=dict)

    def use(
        self, probes: Mapping[str, Probe | Route], documents: Mapping[str, Document] | None = None
    ) -> None:
        self.probes = {path: p if isinstance(p, Route) else Route(p) for path, p in probes.items()}
        self.documents = dict(documents or {})

    def answer(
        self,
        path: str,
        wait: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        pause: Callable[[float], None] = time.sleep,
    ) -> tuple[bool, str] | None:
        """The probe at path (None: no such probe), waiting up to `wait` seconds for it to
        succeed while it never has; when the wait runs out, its fallback's answer."""
        route = self.probes.get(path)
        if route is None:
            return None
        deadline = monotonic() + (0.0 if route.held else min(max(wait, 0.0), MAX_WAIT))
        while True:
            route = self.probes.get(path, route)
            ok, detail = route.probe()
            if ok:
                route.held = True
                return ok, detail
            if monotonic() >= deadline:
                break
            pause(POLL_INTERVAL)
        return route.fallback() if route.fallback is not None else (ok, detail)


def agent_routes(endpoints: Endpoints) -> tuple[dict[str, Probe | Route], dict[str, Document]]:
    return (
        {"/healthz": endpoints.healthy, "/readyz": endpoints.ready},
        {"/metrics": (endpoints.metrics, PROMETHEUS)},
    )


def serve(address: str, port: int, endpoints: Endpoints) -> ThreadingHTTPServer:
    probes, documents = agent_routes(endpoints)
    return serve_routes(address, port, probes=probes, documents=documents)


STARTING_AGENT: dict[str, Probe] = {
    "/healthz": lambda: (True, "starting"),
    "/readyz": lambda: (False, "starting"),
}
STARTING_NAMED: dict[str, Probe] = {
    "/started": lambda: (False, "starting"),
    "/readyz": lambda: (False, "starting"),
    "/livez": lambda: (True, "starting"),
}


def serve_starting(address: str, port: int, probes: Mapping[str, Probe]) -> Routes:
    """Serve `probes` (what a container answers while it is still loading) until Routes.use
    gives the real ones."""
    routes = Routes()
    routes.use(probes)
    serve_with(address, port, routes)
    return routes


def serve_routes(
    address: str,
    port: int,
    *,
    probes: Mapping[str, Probe | Route],
    documents: Mapping[str, Document] | None = None,
) -> ThreadingHTTPServer:
    """Serve each probe and document at its path."""
    routes = Routes()
    routes.use(probes, documents)
    return serve_with(address, port, routes)


def wait_of(query: str) -> float:
    """The seconds a request may wait (`wait=` in its query string); 0 when absent or not a
    finite number."""
    try:
        wait = float(parse_qs(query).get("wait", ["0"])[0])
    except ValueError:
        return 0.0
    return wait if math.isfinite(wait) else 0.0


def serve_with(address: str, port: int, routes: Routes) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path, _, query = self.path.partition("?")
            document = routes.documents.get(path)
            if document is not None:
                body, content_type = document
                self._reply(200, body(), content_type)
                return
            answer = routes.answer(path, wait_of(query))
            if answer is None:
                self._reply(404, "not found\n")
                return
            ok, detail = answer
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
