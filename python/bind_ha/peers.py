"""Peers, their published status, candidate eligibility and role labels (pure).

Each agent publishes on its own pod an annotation with its health and per-zone
SOA serials. Like Patroni, a follower defers to a healthier peer or one with
higher serials, so the most up-to-date pod becomes primary; after one lease
duration it stops deferring, so a set of pods can never deadlock.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

PRIMARY = "primary"
SECONDARY = "secondary"
ROLES = (PRIMARY, SECONDARY)
SERIAL_SPACE = 2**32


def serial_newer(a: int, b: int) -> bool:
    """RFC 1982 serial arithmetic: is a after b?"""
    return a != b and ((a - b) % SERIAL_SPACE) < 2**31


def serial_add(serial: int, increment: int) -> int:
    """RFC 1982 addition; increment must be below 2^31."""
    if not 0 < increment < 2**31:
        raise ValueError(f"serial increment {increment} out of range")
    return (serial + increment) % SERIAL_SPACE or 1


def newest(serials: Iterable[int]) -> int | None:
    """The newest serial in serial arithmetic (they are close together in practice)."""
    best: int | None = None
    for serial in serials:
        if best is None or serial_newer(serial, best):
            best = serial
    return best


@dataclass(frozen=True)
class Status:
    """What an agent publishes about itself on its pod."""

    healthy: bool
    serials: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"healthy": self.healthy, "serials": dict(sorted(self.serials.items()))}, separators=(",", ":")
        )

    @classmethod
    def from_json(cls, text: str | None) -> Status | None:
        """Parse a peer's annotation; a malformed one counts as no status at all."""
        if not text:
            return None
        try:
            data = json.loads(text)
            serials = {str(zone): int(serial) for zone, serial in dict(data.get("serials", {})).items()}
            return cls(healthy=bool(data["healthy"]), serials=serials)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def more_current_than(self, other: Status) -> bool:
        """At least as new for every zone, newer for one (a partial order)."""
        newer_somewhere = False
        for zone, serial in self.serials.items():
            theirs = other.serials.get(zone)
            if theirs is None or serial_newer(serial, theirs):
                newer_somewhere = True
            elif serial_newer(theirs, serial):
                return False
        return newer_somewhere


@dataclass(frozen=True)
class Peer:
    """A pod of this release, as listed from the API."""

    name: str
    uid: str
    ip: str | None
    role: str | None  # the role label's value
    status: Status | None
    deleting: bool = False
    heartbeat: str | None = None  # the leader's announcement of its latest Lease write (MicroTime text)

    @property
    def identity(self) -> str:
        return f"{self.name}/{self.uid}"


def leader_address(peers: Iterable[Peer], leader_identity: str | None) -> str | None:
    """The IP of the pod holding the Lease: same name *and* UID (a recreated pod is not the leader)."""
    for peer in peers:
        if peer.identity == leader_identity:
            return peer.ip
    return None


def notify_targets(peers: Iterable[Peer], me: str) -> tuple[str, ...]:
    """Addresses the primary must NOTIFY: every other pod that has an IP, in a stable order."""
    return tuple(sorted({peer.ip for peer in peers if peer.name != me and peer.ip}))


def better_candidates(mine: Status, peers: Iterable[Peer], me: str) -> list[str]:
    """Names of healthy peers with more current data than ours."""
    return sorted(
        peer.name
        for peer in peers
        if peer.name != me
        and not peer.deleting
        and peer.status is not None
        and peer.status.healthy
        and peer.status.more_current_than(mine)
    )


def defer_reason(
    mine: Status,
    peers: Iterable[Peer],
    me: str,
    *,
    acquirable_for: float,
    lease_duration: float,
) -> str | None:
    """Why we should leave an acquirable Lease to someone else right now, if we should: we defer
    to a healthier, more current peer for one lease duration. (A pod without data for a dynamic
    zone that held data never stands at all: see leasenotes.may_seed.)"""
    if not mine.healthy:
        return "this pod's named is not healthy"
    better = better_candidates(mine, peers, me)
    if better and acquirable_for < lease_duration:
        return f"deferring to {', '.join(better)} (more current zone serials)"
    return None


@dataclass(frozen=True)
class LabelFix:
    pod: str
    role: str


def label_fixes(peers: Iterable[Peer], me: str, leading: bool) -> list[LabelFix]:
    """Role labels to correct. A leader demotes every other pod labelled primary
    (listed first: they must go before it labels itself); anyone fixes its own."""
    fixes = []
    own_role = PRIMARY if leading else SECONDARY
    for peer in peers:
        if peer.name == me:
            if peer.role != own_role:
                fixes.append(LabelFix(me, own_role))
        elif leading and peer.role == PRIMARY:
            fixes.insert(0, LabelFix(peer.name, SECONDARY))
    return fixes
