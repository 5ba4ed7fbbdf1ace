"""Failover and fencing with real agents, real named and the real API server."""

from __future__ import annotations

import datetime
import signal
import threading
import time

import pytest

from tests.harness import dnsclient
from tests.harness.monitor import PrimaryLabelMonitor
from tests.harness.pods import DNS_PORT, UPDATE_KEY, LocalPod, LocalRelease
from tests.harness.proxy import HANG, REFUSE


def update_key(release: LocalRelease) -> tuple[str, str]:
    return UPDATE_KEY, release.secret("update-secret")


def accepted_within(release: LocalRelease, pod: LocalPod, name: str, ip: str, timeout: float) -> float:
    """Keep sending a signed update to pod until it is accepted; the monotonic time it was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            dnsclient.update(
                pod.address, DNS_PORT, "dyn.test", add={name: ip}, key=update_key(release), timeout=1
            )
            == "NOERROR"
        ):
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"{pod.name} accepted no update within {timeout}s\n{release.logs_tail()}")


def visible_on(pod: LocalPod, name: str, ip: str, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while dnsclient.lookup(pod.address, DNS_PORT, f"{name}.dyn.test") != [ip]:
        assert time.monotonic() < deadline, f"{name} never reached {pod.name}"
        time.sleep(0.02)


def test_crash_of_the_primary_promotes_a_follower_within_lease_duration_plus_2s(
    release: LocalRelease, monitor: PrimaryLabelMonitor
) -> None:
    old, followers = release.start_pods(3)
    crashed_at = time.monotonic()
    print(f"crash at {datetime.datetime.now(datetime.UTC)}")
    old.crash()
    new = release.wait_for_leader(excluding=old, timeout=30)
    accepted_at = accepted_within(release, new, "after-crash", "192.0.2.21", timeout=30)
    print(f"crash failover: {accepted_at - crashed_at:.3f}s")

    assert accepted_at - crashed_at <= release.timing.lease_duration + 2, (
        f"failover took {accepted_at - crashed_at:.1f}s\n{release.logs_tail()}"
    )
    (other,) = [pod for pod in followers if pod is not new]
    visible_on(other, "after-crash", "192.0.2.21")  # the other follower transfers from the new primary
    assert monitor.most_at_once <= 1, monitor.history
    assert release.primary_labelled() == [new.name]


def test_sigterm_of_the_primary_agent_hands_over_well_within_a_lease_duration(
    release: LocalRelease, monitor: PrimaryLabelMonitor
) -> None:
    old, _followers = release.start_pods(3)
    signalled_at = time.monotonic()
    old.kill_agent(signal.SIGTERM)
    new = release.wait_for_leader(excluding=old, timeout=15)
    accepted_at = accepted_within(release, new, "after-handover", "192.0.2.22", timeout=15)
    handover = accepted_at - signalled_at
    print(f"graceful handover: {handover:.3f}s")
    assert handover < release.timing.lease_duration / 2, f"handover took {handover:.2f}s"
    # The old named stopped taking writes before the Lease was handed over.
    assert (
        dnsclient.update(
            old.address, DNS_PORT, "dyn.test", add={"late": "192.0.2.23"}, key=update_key(release)
        )
        != "NOERROR"
    )
    assert monitor.most_at_once <= 1, monitor.history


class UpdateProbe(threading.Thread):
    """Sends a signed update to one pod every 100 ms; remembers the last one accepted (wall clock)."""

    def __init__(self, release: LocalRelease, pod: LocalPod) -> None:
        super().__init__(daemon=True)
        self.release, self.pod = release, pod
        self.last_accepted: datetime.datetime | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        count = 0
        while not self.halt.is_set():
            count += 1
            rcode = dnsclient.update(
                self.pod.address,
                DNS_PORT,
                "dyn.test",
                add={f"probe{count}": "192.0.2.30"},
                key=update_key(self.release),
                timeout=1,
            )
            if rcode == "NOERROR":
                self.last_accepted = datetime.datetime.now(datetime.UTC)
            self.halt.wait(0.1)


def new_holder_acquired_at(release: LocalRelease, old: LocalPod, timeout: float) -> datetime.datetime:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lease = release.lease()
        if lease and lease.spec.holder_identity not in (None, "", old.identity):
            return lease.spec.acquire_time  # written by the new leader's clock: this machine's clock
        time.sleep(0.05)
    raise AssertionError(f"nobody took over within {timeout}s\n{release.logs_tail()}")


@pytest.mark.parametrize("mode", [HANG, REFUSE])
def test_a_primary_cut_off_from_the_api_fences_before_anyone_can_acquire(
    release: LocalRelease, mode: str
) -> None:
    old, _followers = release.start_pods(3)
    probe = UpdateProbe(release, old)
    probe.start()
    time.sleep(0.5)
    assert old.proxy is not None
    old.proxy.set_mode(mode)
    acquired_at = new_holder_acquired_at(release, old, timeout=30)
    time.sleep(0.5)
    probe.halt.set()
    probe.join()
    assert probe.last_accepted is not None
    margin = (acquired_at - probe.last_accepted).total_seconds()
    assert margin > 0, f"old primary took a write {-margin:.3f}s after the new leader acquired the Lease"
    assert "fenced: renew deadline passed" in old.log_text("agent")


@pytest.mark.parametrize("sig", [signal.SIGSTOP, signal.SIGKILL], ids=["hung-agent", "dead-agent"])
def test_a_primary_whose_agent_hangs_or_dies_stops_taking_writes_within_lease_duration(
    release: LocalRelease, sig: signal.Signals
) -> None:
    old, _followers = release.start_pods(3)
    probe = UpdateProbe(release, old)
    probe.start()
    time.sleep(0.5)
    stopped = datetime.datetime.now(datetime.UTC)
    old.kill_agent(sig)
    try:
        acquired_at = new_holder_acquired_at(release, old, timeout=30)
        time.sleep(0.5)
        probe.halt.set()
        probe.join()
    finally:
        old.kill_agent(signal.SIGCONT)
    assert probe.last_accepted is not None
    assert (probe.last_accepted - stopped).total_seconds() < release.timing.lease_duration
    assert probe.last_accepted < acquired_at
    assert "fence engaged" in old.log_text("named")
