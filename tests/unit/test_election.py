"""The election's pure decisions, with an injected clock (no sleeps)."""

from __future__ import annotations

import datetime
import random

import pytest

from bind_ha import election
from bind_ha.election import Create, Leadership, LeaseMeta, LeaseRecord, Observation, Update, Wait
from bind_ha.settings import Timing

TIMING = Timing(lease_duration=10, renew_deadline=7, retry_period=2)
WALL = datetime.datetime(2026, 11, 25, 12, 0, 0, tzinfo=datetime.UTC)


def record(holder: str, transitions: int = 0, renewed: float = 0.0) -> LeaseRecord:
    moment = WALL + datetime.timedelta(seconds=renewed)
    return LeaseRecord(
        holder=holder, duration_seconds=10, acquire_time=WALL, renew_time=moment, transitions=transitions
    )


def plan(observation: Observation, me: str, now: float, defer: str | None = None) -> election.LeaseAction:
    return election.plan(observation, identity=me, now=now, wall_now=WALL, timing=TIMING, defer_reason=defer)


def test_no_lease_means_create_with_zero_transitions() -> None:
    action = plan(Observation(None, None, 0.0), "a", now=0.0)
    assert isinstance(action, Create)
    assert action.record.holder == "a" and action.record.transitions == 0


def test_a_lease_held_by_another_is_respected_until_it_expires_by_our_own_clock() -> None:
    observed = Observation(record("b"), "7", changed_at=100.0)
    assert isinstance(plan(observed, "a", now=109.9), Wait)
    acquired = plan(observed, "a", now=110.0)
    assert isinstance(acquired, Update)
    assert acquired.version == "7"  # optimistic concurrency on every write
    assert acquired.record.holder == "a" and acquired.record.transitions == 1


def test_expiry_restarts_when_the_record_changes_not_when_it_is_merely_reread() -> None:
    first = election.observe(None, record("b", renewed=0), "1", now=100.0)
    reread = election.observe(first, record("b", renewed=0), "1", now=105.0)
    assert reread.changed_at == 100.0

    renewed = election.observe(reread, record("b", renewed=2), "2", now=106.0)
    assert renewed.changed_at == 106.0
    assert election.held_by_other(renewed, "a", now=115.9, timing=TIMING)


def test_a_label_or_annotation_edit_is_no_renewal_but_the_next_write_carries_it() -> None:
    """client-go compares the leader record, not the resourceVersion: a GitOps label edit of the
    Lease of a dead leader must not keep it alive."""
    first = election.observe(None, record("b", renewed=0), "1", now=100.0)
    edited = election.observe(
        first, record("b", renewed=0), "2", now=105.0, meta=LeaseMeta(labels={"team": "dns"})
    )
    assert edited.changed_at == 100.0
    assert edited.version == "2" and edited.meta.labels == {"team": "dns"}
    assert not election.held_by_other(edited, "a", now=110.0, timing=TIMING)
    action = plan(edited, "a", now=110.0)
    assert isinstance(action, Update) and action.version == "2"


def test_the_holder_renews_keeping_acquire_time_and_transitions() -> None:
    mine = record("a", transitions=4)
    action = plan(Observation(mine, "9", changed_at=0.0), "a", now=50.0)
    assert isinstance(action, Update)
    assert action.record.transitions == 4 and action.record.acquire_time == WALL


def test_a_released_lease_is_acquirable_at_once() -> None:
    released = LeaseRecord(holder="", duration_seconds=1, acquire_time=WALL, renew_time=WALL, transitions=3)
    action = plan(Observation(released, "5", changed_at=100.0), "a", now=100.0)
    assert isinstance(action, Update) and action.record.transitions == 4


def test_deferring_leaves_an_acquirable_lease_but_never_stops_a_renewal() -> None:
    expired = Observation(record("b"), "1", changed_at=0.0)
    assert isinstance(plan(expired, "a", now=50, defer="better peer"), Wait)
    mine = Observation(record("a"), "1", changed_at=0.0)
    assert isinstance(plan(mine, "a", now=50, defer="better peer"), Update)


def test_release_writes_an_empty_holder_only_for_our_own_lease() -> None:
    mine = Observation(record("a", transitions=2), "3", changed_at=0.0)
    release = election.plan_release(mine, identity="a", wall_now=WALL)
    assert release is not None and release.record.holder == "" and release.record.transitions == 2
    assert election.plan_release(Observation(record("b"), "3", 0.0), identity="a", wall_now=WALL) is None


def test_leadership_ends_at_the_renew_deadline_and_requests_never_outlive_it() -> None:
    leadership = Leadership(renewed_at=100.0)
    assert leadership.leading(106.9, TIMING) and not leadership.expired(106.9, TIMING)
    assert leadership.expired(107.0, TIMING) and not leadership.leading(107.0, TIMING)
    assert election.request_timeout(leadership, 100.0, TIMING) == pytest.approx(3.5)
    assert election.request_timeout(leadership, 106.0, TIMING) == pytest.approx(1.0)
    assert election.request_timeout(Leadership(), 0.0, TIMING) == pytest.approx(3.5)


class FakeApi:
    """An in-memory Lease with resourceVersion semantics (create is atomic, stale writes fail)."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.version = 0

    def write(self, action: Create | Update) -> str | None:
        if isinstance(action, Create):
            if self.record is not None:
                return None
        elif self.record is None or action.version != str(self.version):
            return None
        self.record, self.version = action.record, self.version + 1
        return str(self.version)


@pytest.mark.parametrize("seed", range(20))
def test_simulated_agents_never_both_lead(seed: int) -> None:
    """Agents with random delays, lost writes and crashes: at no instant do two believe they lead."""
    rng = random.Random(seed)
    api = FakeApi()
    names = ["a", "b", "c"]
    observations: dict[str, Observation | None] = dict.fromkeys(names)
    leadership = {name: Leadership() for name in names}
    crashed_until = dict.fromkeys(names, 0.0)
    now = 0.0
    leaders_seen = set()
    for _step in range(3000):
        now += rng.uniform(0.0, 0.6)
        name = rng.choice(names)
        if now < crashed_until[name]:
            continue
        if rng.random() < 0.01:  # a crash: the agent forgets everything and stays away a while
            crashed_until[name] = now + rng.uniform(1, 20)
            observations[name], leadership[name] = None, Leadership()
            continue
        observations[name] = election.observe(observations[name], api.record, str(api.version), now)
        observation = observations[name]
        assert observation is not None
        if election.holder(observation) != name:
            leadership[name] = Leadership()
        action = election.plan(
            observation,
            identity=name,
            now=now,
            wall_now=WALL + datetime.timedelta(seconds=now),
            timing=TIMING,
            defer_reason=None,
        )
        started = now
        now += rng.uniform(0.0, 0.3)  # the request takes time
        if not isinstance(action, Wait) and rng.random() > 0.1 and (version := api.write(action)):
            leadership[name] = Leadership(renewed_at=started)
            observations[name] = Observation(action.record, version, changed_at=started)
        leading = [n for n in names if leadership[n].leading(now, TIMING) and crashed_until[n] <= now]
        assert len(leading) <= 1, f"two leaders at t={now:.2f}: {leading}"
        leaders_seen.update(leading)
    assert leaders_seen, "the simulation never elected anyone"
