"""The named container's entry point: runs `named -g` and fences it.

The fence covers a dead or hung agent: if this pod's BIND is primary and the
agent's "valid until" mark (CLOCK_MONOTONIC, shared by the pod's containers)
has passed, every dynamic zone is frozen (one `rndc freeze` for all of them),
so updates are REFUSED while queries are still answered. Once the mark is
renewed the zones are thawed again. The mark is only renewed by a leader, so a
stale primary stops taking writes no later than renewDeadline + CHECK_INTERVAL
+ one rndc command after its last renewal, before any other pod can acquire
the Lease (leaseDuration; settings.validate_timing keeps the margin).

On SIGTERM it freezes dynamic zones and tells the agent (named-stopping); a
primary keeps serving transfers until the agent has let a peer catch up and
released the Lease (lease-released), for at most the termination grace period
less NAMED_STOP_RESERVE, then named stops.

It also answers the named container's probes over HTTP (BIND_HA_PROBE_PORT):
/started, /readyz and /livez (bind_ha.probe), and /zones, the applied zones the `helm
test` pod checks. The kubelet's probes thus cost a DNS query in this process,
not a Python interpreter started every few seconds.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from types import FrameType

from bind_ha import probe
from bind_ha.bind import Bind, BindError
from bind_ha.clock import Clock, SystemClock
from bind_ha.health import Probe, Route, Routes, serve_routes
from bind_ha.peers import PRIMARY
from bind_ha.runstate import RunDir
from bind_ha.settings import Settings
from bind_ha.startup import load_settings, local_bind

log = logging.getLogger("bind_ha.supervisor")
CHECK_INTERVAL = 0.25
NAMED_STOP_RESERVE = 2.0  # seconds of the grace period left for named itself to stop


@dataclass
class Fence:
    """Freezes dynamic zones while this pod is primary without a valid mark."""

    run: RunDir
    bind: Bind
    clock: Clock
    engaged: bool = False

    def stale(self) -> bool:
        return self.run.role() == PRIMARY and self.clock.monotonic() > self.run.valid_until()

    def check(self) -> None:
        """Freeze on every check while stale (idempotent, and it undoes a thaw that raced
        with the deadline); thaw once when the agent renews again."""
        if self.stale():
            frozen = self._freeze()
            if frozen and not self.engaged:
                log.warning("fence engaged: primary without a renewed Lease; dynamic zones frozen")
            self.engaged = self.engaged or frozen
        elif self.engaged:
            try:
                self.bind.thaw_all()
            except BindError as error:
                log.error("thaw: %s", error)
                return
            self.engaged = False
            log.info("fence released: the agent renewed the Lease")

    def freeze_if_primary(self) -> None:
        if self.run.role() == PRIMARY:
            self._freeze()

    def _freeze(self) -> bool:
        """Freeze every zone with one command; True when named confirmed it."""
        try:
            self.bind.freeze_all()
        except BindError as error:
            log.error("freeze: %s", error)
            return False
        return True


@dataclass
class NamedProbes:
    """The named container's probes, answered from the supervisor's own process."""

    run: RunDir
    address: str
    port: int
    named: subprocess.Popen[bytes] | None = None  # set once named is started

    def ready(self) -> tuple[bool, str]:
        problems = probe.named_ready(self.run, self.address, self.port)
        return (False, "not ready: " + "; ".join(problems)) if problems else (True, "ready")

    def live(self) -> tuple[bool, str]:
        named = self.named
        if named is None:
            return True, "named not started yet (waiting for its first named.conf)"
        if named.poll() is not None:
            return False, f"named exited with status {named.returncode}"
        return probe.named_alive(self.address, self.port)

    def serve(self, settings: Settings, routes: Routes | None = None) -> None:
        """Serve the probes, on `routes` when hooks/named.py already serves them."""
        # The startup probe waits (?wait=) for readiness, so a normal start logs no failed
        # readiness probe, then settles for liveness: a named that answers but cannot get
        # ready (no primary yet) is started, and kept out of the Services.
        probes: dict[str, Probe | Route] = {
            "/started": Route(self.ready, fallback=self.live),
            "/readyz": self.ready,
            "/livez": self.live,
        }
        documents = {"/zones": (lambda: probe.zones_document(self.run), "application/json")}
        if routes is None:
            serve_routes(settings.health_address, settings.probe_port, probes=probes, documents=documents)
        else:
            routes.use(probes, documents)


def supervise(
    named_argv: list[str],
    fence: Fence,
    *,
    probes: NamedProbes | None = None,
    wait_for_config: float = 120.0,
    handover_wait: float = 10.0,
) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    deadline = fence.clock.monotonic() + wait_for_config
    while not fence.run.named_conf.exists():
        if stop.is_set() or fence.clock.monotonic() > deadline:
            log.error("no %s to start named with (did the init container run?)", fence.run.named_conf)
            return 1
        stop.wait(0.2)
    fence.run.unsync()  # what named loads from disk may be old until it catches up again
    fence.run.clear_markers()  # a previous named's stop (and its handover) is not this one's
    named = subprocess.Popen(named_argv)
    if probes is not None:
        probes.named = named
    while named.poll() is None:
        if stop.wait(CHECK_INTERVAL):
            return _shut_down(named, fence, handover_wait)
        fence.check()
    log.error("named exited with status %s", named.returncode)
    return named.returncode or 1


def _shut_down(named: subprocess.Popen[bytes], fence: Fence, handover_wait: float) -> int:
    """Refuse writes, tell the agent, let a primary's peers catch up, then stop named."""
    fence.freeze_if_primary()
    fence.run.mark_stopping()
    if fence.run.role() == PRIMARY:
        # Keep serving transfers until the agent has seen every peer catch up and
        # released the Lease, so no acknowledged update leaves with this pod.
        deadline = fence.clock.monotonic() + handover_wait
        while not fence.run.released() and fence.clock.monotonic() < deadline and named.poll() is None:
            time.sleep(0.02)
    named.terminate()
    try:
        return named.wait(timeout=20)
    except subprocess.TimeoutExpired:
        named.kill()
        return named.wait()


def main(routes: Routes | None = None) -> int:
    """The named container's entry point; `routes`: its probes' server, when hooks/named.py
    started one before importing this module."""
    settings = load_settings("named")
    if settings is None:
        return 2
    run = RunDir(settings.run_dir)
    probes = NamedProbes(run, settings.local_dns_address, settings.dns_port)
    probes.serve(settings, routes)  # first: the kubelet probes from the container's start on
    argv = ["named", "-g", "-c", str(run.named_conf)]
    handover_wait = max(1.0, settings.termination_grace_period - NAMED_STOP_RESERVE)
    fence = Fence(run=run, bind=local_bind(settings), clock=SystemClock())
    return supervise(argv, fence, probes=probes, handover_wait=handover_wait)
