"""The Lease election, as pure decisions (client-go's leaderelection, ported).

Nothing here does I/O or reads a clock: callers pass `now` (monotonic seconds)
and `wall_now` (UTC, only ever written into the Lease, never compared).

The rules, and why:
- Expiry is judged by the local monotonic time at which this agent last saw the
  record *change*, plus the record's leaseDurationSeconds. The record's
  renewTime is written by another machine's clock and is never compared.
- A leader counts its leadership from the moment it *started* its last
  successful write (conservative: the server applied it later than that), and
  stops trusting it renewDeadline later even if a request is still hanging.
- Every write carries the resourceVersion last read; a 409 means someone else
  wrote first, so the caller re-reads on the next round.
- Only the leader record (holder, duration, acquire and renew times,
  transitions) counts as a change, as in client-go: a label or annotation
  written by someone else (GitOps, an operator) bumps the resourceVersion but
  must not keep a dead leader alive.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from bind_ha.settings import Timing


@dataclass(frozen=True)
class LeaseRecord:
    """The spec of a coordination.k8s.io/v1 Lease. holder "" means released."""

    holder: str
    duration_seconds: int
    acquire_time: datetime.datetime | None
    renew_time: datetime.datetime | None
    transitions: int


@dataclass(frozen=True)
class LeaseMeta:
    """The Lease's labels and annotations: carried over by every write (a PUT replaces them)."""

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Observation:
    """The Lease as last read, and when (monotonic) its leader record last changed."""

    record: LeaseRecord | None  # None: no Lease object exists yet
    version: str | None
    changed_at: float
    meta: LeaseMeta = field(default_factory=LeaseMeta)


def observe(
    previous: Observation | None,
    record: LeaseRecord | None,
    version: str | None,
    now: float,
    meta: LeaseMeta | None = None,
) -> Observation:
    """Fold a fresh read into what we knew: the clock restarts only when the leader record
    changed. `now` must be taken after the read returned (client-go's observedTime): a slow
    read that returns the last renewal must not date it earlier than we saw it.

    The version and metadata are always the latest (the next write needs them), but a new
    resourceVersion alone is no renewal: someone else may have edited a label.
    """
    meta = meta if meta is not None else (previous.meta if previous is not None else LeaseMeta())
    if previous is not None and previous.record == record:
        if previous.version == version and previous.meta == meta:
            return previous
        return replace(previous, version=version, meta=meta)
    return Observation(record=record, version=version, changed_at=now, meta=meta)


def expires_at(observation: Observation, timing: Timing) -> float:
    record = observation.record
    duration = record.duration_seconds if record and record.duration_seconds > 0 else timing.lease_duration
    return observation.changed_at + duration


def held_by_other(observation: Observation, identity: str, now: float, timing: Timing) -> bool:
    record = observation.record
    if record is None or record.holder in ("", identity):
        return False
    return now < expires_at(observation, timing)


def holder(observation: Observation | None) -> str | None:
    """The identity named in the Lease, expired or not ("" and absent are None)."""
    if observation is None or observation.record is None or not observation.record.holder:
        return None
    return observation.record.holder


@dataclass(frozen=True)
class Create:
    record: LeaseRecord


@dataclass(frozen=True)
class Update:
    record: LeaseRecord
    version: str | None


@dataclass(frozen=True)
class Wait:
    reason: str


LeaseAction = Create | Update | Wait


def plan(
    observation: Observation,
    *,
    identity: str,
    now: float,
    wall_now: datetime.datetime,
    timing: Timing,
    defer_reason: str | None,
) -> LeaseAction:
    """The one Lease write this round should attempt, or why it should not.

    defer_reason is set when a better candidate exists (see peers.should_defer):
    we then leave an acquirable Lease to it, but always renew our own.
    """
    duration = int(timing.lease_duration)
    record = observation.record
    if record is not None and record.holder == identity:
        renewed = replace(
            record,
            duration_seconds=duration,
            renew_time=wall_now,
            acquire_time=record.acquire_time or wall_now,
        )
        return Update(renewed, observation.version)
    if held_by_other(observation, identity, now, timing):
        assert record is not None
        return Wait(f"held by {record.holder}")
    if defer_reason is not None:
        return Wait(defer_reason)
    acquired = LeaseRecord(
        holder=identity, duration_seconds=duration, acquire_time=wall_now, renew_time=wall_now, transitions=0
    )
    if record is None:
        return Create(acquired)
    return Update(replace(acquired, transitions=record.transitions + 1), observation.version)


def plan_release(
    observation: Observation | None, *, identity: str, wall_now: datetime.datetime
) -> Update | None:
    """Hand the Lease back (empty holder) so the next candidate need not wait for expiry."""
    if observation is None or observation.record is None or observation.record.holder != identity:
        return None
    released = replace(observation.record, holder="", duration_seconds=1, renew_time=wall_now)
    return Update(released, observation.version)


@dataclass(frozen=True)
class Leadership:
    """Our own view of our leadership: when our last successful write started."""

    renewed_at: float | None = None

    def leading(self, now: float, timing: Timing) -> bool:
        return self.renewed_at is not None and now < self.renewed_at + timing.renew_deadline

    def expired(self, now: float, timing: Timing) -> bool:
        """We were leading and the renew deadline passed: fence now."""
        return self.renewed_at is not None and now >= self.renewed_at + timing.renew_deadline

    def valid_until(self, timing: Timing) -> float:
        """Monotonic time after which our BIND must stop taking writes."""
        return (self.renewed_at or 0.0) + timing.renew_deadline


def request_timeout(leadership: Leadership, now: float, timing: Timing) -> float:
    """Per-request timeout: half the renew deadline, and never past our own deadline."""
    budget = timing.request_timeout
    if leadership.renewed_at is not None:
        budget = min(budget, leadership.valid_until(timing) - now)
    return max(budget, 0.1)
