"""What the hooks run: thin wiring of settings, adapters and the logic modules.

Each returns a process exit status; a bad setting exits 2 with a message that
names the variable, before anything is started.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from types import FrameType

from bind_ha import settings as settings_module
from bind_ha.agent import Agent
from bind_ha.bind import Bind
from bind_ha.catalog import Catalog
from bind_ha.clock import SystemClock
from bind_ha.health import Endpoints, serve
from bind_ha.init import InitError, initialize
from bind_ha.keys import SecretError, load_keys, rndc_conf_path
from bind_ha.kube import Kube, PodCache, api_client
from bind_ha.metrics import Metrics
from bind_ha.probe import named_ready
from bind_ha.runstate import RunDir
from bind_ha.settings import Settings, SettingsError
from bind_ha.supervisor import Fence, supervise
from bind_ha.zonemodel import ZoneError

log = logging.getLogger("bind_ha")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "time": self.formatTime(record),
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def _setup_logging(log_format: str, log_level: str, component: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s {component} %(levelname)s %(message)s"))
    logging.basicConfig(
        level=logging.DEBUG if log_level == "debug" else logging.INFO, handlers=[handler], force=True
    )
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


def _settings(component: str) -> Settings | None:
    try:
        loaded = settings_module.load(os.environ)
    except SettingsError as error:
        print(f"bind-ha {component}: invalid configuration: {error}", file=sys.stderr)
        return None
    _setup_logging(loaded.log_format, loaded.log_level, component)
    return loaded


def _bind(settings: Settings) -> Bind:
    return Bind(rndc_conf_path(settings), settings.local_dns_address, settings.dns_port)


def init() -> int:
    settings = _settings("init")
    if settings is None:
        return 2
    try:
        initialize(settings, Kube(settings, api_client(settings)))
    except (InitError, SecretError, ZoneError, OSError) as error:
        log.error("init failed: %s", error)
        return 1
    return 0


def agent() -> int:
    settings = _settings("agent")
    if settings is None:
        return 2
    try:
        keys = load_keys(settings)
    except SecretError as error:
        log.error("%s", error)
        return 2
    client = api_client(settings)
    run = RunDir(settings.run_dir)
    catalog = Catalog(
        settings.zones_file, settings.zones_dir, settings.zones_dir_type, settings.run_dir / "scratch"
    )
    the_agent = Agent(
        settings=settings,
        kube=Kube(settings, client),
        bind=_bind(settings),
        catalog=catalog,
        clock=SystemClock(),
        metrics=Metrics(),
        keys=keys,
        run=run,
    )
    stop = threading.Event()
    cache = PodCache(settings, api_client(settings), the_agent.wake.set, stop)
    the_agent.cached_peers = cache.peers

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        the_agent.wake.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    serve(
        settings.health_address,
        settings.health_port,
        Endpoints(healthy=the_agent.healthy, ready=the_agent.readiness, metrics=the_agent.metrics.render),
    )
    cache.start()
    threading.Thread(target=_watch_stopping, args=(run, the_agent.wake, stop), daemon=True).start()
    log.info("agent %s starting (lease %s/%s)", settings.identity, settings.namespace, settings.lease_name)
    the_agent.run_forever(stop)
    return 0


def _watch_stopping(run: RunDir, wake: threading.Event, stop: threading.Event) -> None:
    """named's supervisor marks its SIGTERM: wake the agent at once to hand the Lease over."""
    while not stop.wait(0.1):
        if run.stopping():
            wake.set()
            return


def named() -> int:
    settings = _settings("named")
    if settings is None:
        return 2
    run = RunDir(settings.run_dir)
    argv = ["named", "-g", "-c", str(run.named_conf)]
    return supervise(argv, Fence(run=run, bind=_bind(settings), clock=SystemClock()))


def probe() -> int:
    """named's readiness probe (exit 0 when every zone answers SOA with AA)."""
    settings = _settings("probe")
    if settings is None:
        return 2
    problems = named_ready(RunDir(settings.run_dir), settings.local_dns_address, settings.dns_port)
    if problems:
        print("not ready: " + "; ".join(problems))
        return 1
    print("ready")
    return 0
