"""The init and agent entry points: thin wiring of settings, adapters and logic.

Each returns a process exit status; a bad setting exits 2 with a message that
names the variable, before anything is started.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from bind_ha.agent import Agent
from bind_ha.catalog import catalog_for
from bind_ha.clock import SystemClock
from bind_ha.health import Endpoints, Routes, agent_routes, serve
from bind_ha.init import InitError, initialize
from bind_ha.keys import SecretError, load_keys
from bind_ha.kube import EventPoster, Kube, PodCache, api_client
from bind_ha.metrics import Metrics
from bind_ha.roles import LocalBind
from bind_ha.runstate import RELEASED, RunDir
from bind_ha.settings import Settings
from bind_ha.startup import load_settings, local_bind
from bind_ha.zonefiles import sources_signature
from bind_ha.zonemodel import ZoneError

log = logging.getLogger("bind_ha")


def init() -> int:
    settings = load_settings("init")
    if settings is None:
        return 2
    try:
        initialize(settings, Kube(settings, api_client(settings)))
    except (InitError, SecretError, ZoneError, OSError) as error:
        log.error("init failed: %s", error)
        return 1
    return 0


def agent(routes: Routes | None = None) -> int:
    """The agent container; `routes` is its health server when hooks/agent.py started one
    before importing this module (see bind_ha.health)."""
    settings = load_settings("agent")
    if settings is None:
        return 2
    try:
        keys = load_keys(settings)
    except SecretError as error:
        log.error("%s", error)
        return 2
    client = api_client(settings)
    run = RunDir(settings.run_dir)
    run.clear_markers(RELEASED)  # a previous agent's handover is not this one's
    kube = Kube(settings, client)
    metrics = Metrics()
    clock = SystemClock()
    stop = threading.Event()
    events = EventPoster(kube, settings.timing.request_timeout, threading.Event())
    events.start()  # never stopped: it posts the Events of the handover, up to the process's end
    post_event = events.post

    catalog = catalog_for(settings)
    local = LocalBind(
        settings=settings,
        keys=keys,
        bind=local_bind(settings),
        catalog=catalog,
        run=run,
        metrics=metrics,
        clock=clock,
        events=post_event,
    )
    the_agent = Agent(
        settings=settings, kube=kube, local=local, clock=clock, metrics=metrics, run=run, events=post_event
    )
    catalog.on_ready = the_agent.wake.set  # zones compile off the election thread: apply them at once
    cache = PodCache(settings, api_client(settings), the_agent.peer_changed, stop, clock)
    the_agent.pod_cache = cache

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        the_agent.wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    endpoints = Endpoints(
        healthy=the_agent.healthy, ready=the_agent.readiness, metrics=the_agent.metrics.render
    )
    if routes is None:
        serve(settings.health_address, settings.health_port, endpoints)
    else:
        routes.use(*agent_routes(endpoints))
    cache.start()
    threading.Thread(target=_watch_local, args=(settings, run, the_agent.wake, stop), daemon=True).start()
    log.info("agent %s starting (lease %s/%s)", settings.identity, settings.namespace, settings.lease_name)
    the_agent.run_forever(stop)
    return 0


def _watch_local(settings: Settings, run: RunDir, wake: threading.Event, stop: threading.Event) -> None:
    """Wake the agent at once when named's supervisor marks its SIGTERM (hand the Lease over)
    or when a zone source changes (the seed's "inotify + rndc reload", by polling stat())."""
    signature = sources_signature(settings.zones_file, settings.zones_dir)
    stopping_seen = False
    while not stop.wait(0.1):
        if run.stopping() and not stopping_seen:
            stopping_seen = True
            wake.set()
        current = sources_signature(settings.zones_file, settings.zones_dir)
        if current != signature:
            signature = current
            wake.set()
