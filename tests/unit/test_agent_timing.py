"""The agent's clock discipline and its Events, with an injected clock and a fake API (pure)."""

from __future__ import annotations

import datetime
import threading
import time

from bind_ha import election
from bind_ha.agent import observe_lease
from bind_ha.election import LeaseMeta, LeaseRecord
from bind_ha.kube import EventPoster
from bind_ha.settings import Timing

TIMING = Timing(lease_duration=10, renew_deadline=6, retry_period=2)
WALL = datetime.datetime(2026, 11, 25, 12, 0, 0, tzinfo=datetime.UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime.datetime:
        return WALL


class SlowLease:
    """A Lease read that takes `delay` seconds of the fake clock and returns a renewal."""

    def __init__(self, clock: FakeClock, delay: float) -> None:
        self.clock, self.delay = clock, delay

    def read_lease(self, timeout: float) -> tuple[LeaseRecord | None, str | None, LeaseMeta]:
        self.clock.now += self.delay
        record = LeaseRecord("leader", 10, WALL, WALL, 0)
        return record, "42", LeaseMeta()


def test_a_slow_read_dates_the_renewal_it_returns_from_when_it_arrived() -> None:
    """client-go stamps observedTime after the response: a renewal that reached us through a
    3 s read expires 10 s after it *arrived*, never 10 s after we asked."""
    clock = FakeClock()
    asked = clock.now
    observation = observe_lease(SlowLease(clock, 3.0), clock, None, timeout=3.0)
    assert observation.changed_at == asked + 3.0
    assert election.held_by_other(observation, "follower", now=asked + 12.9, timing=TIMING)
    assert not election.held_by_other(observation, "follower", now=asked + 13.0, timing=TIMING)


class BlockedKube:
    """Event posting hangs until released, as a slow API server would make it."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.both_posted = threading.Event()
        self.posted: list[str] = []

    def event(self, reason: str, message: str, *, warning: bool, timeout: float) -> None:
        self.release.wait(10)
        self.posted.append(reason)
        if len(self.posted) == 2:
            self.both_posted.set()


def test_a_slow_event_never_holds_up_the_caller() -> None:
    kube = BlockedKube()
    stop = threading.Event()
    poster = EventPoster(kube, timeout=1.0, stop=stop)  # type: ignore[arg-type]
    poster.start()
    try:
        started = time.monotonic()
        for reason in ("Promoted", "Demoted"):
            poster.post(reason, "message")
        assert time.monotonic() - started < 0.5 and kube.posted == []
        kube.release.set()
        assert kube.both_posted.wait(5) and kube.posted == ["Promoted", "Demoted"]
    finally:
        stop.set()
