"""Peers, their published status, candidate eligibility and role labels (pure).

Each agent publishes on its own pod an annotation with its health and per-zone
SOA serials. Like Patroni, a follower defers to a healthier peer or one with
higher serials, so the most up-to-date pod becomes primary; after one lease
duration it stops deferring, so a set of pods can never deadlock.

Anyone who may edit pods in the namespace can write that annotation, so it is
hostile input: parse_status caps its size and checks every field (a bad one
counts as no status), and a promotion ignores published serials more than
SERIAL_WINDOW away from the serial its own named serves (plausible_serials).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bind_ha.zonemodel import ZoneError, normalize_name

PRIMARY = "primary"
SECONDARY = "secondary"
ROLES = (PRIMARY, SECONDARY)
SERIAL_SPACE = 2**32
STATUS_MAX_BYTES = 64 * 1024  # of the annotation's text; checked before parsing
STATUS_FIELDS = ("healthy", "serials")
# A published serial further than this from the serial this pod serves (either way, in
# RFC 1982 arithmetic) is not believed: honest replicas differ by the updates not yet
# replicated, far fewer than 2^24 (16,777,216); a serial lifted past 2^31 is ignored by BIND.
SERIAL_WINDOW = 2**24


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
        return parse_status(text)[0]

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


class StatusError(ValueError):
    """A published status is malformed; the message says what, without echoing it."""


def _reject_constant(name: str) -> Any:
    raise StatusError(f"{name} is not a serial")


def _reject_float(text: str) -> Any:
    raise StatusError("a serial must be an integer")


def _serials(raw: object) -> dict[str, int]:
    if not isinstance(raw, dict):
        raise StatusError("serials must be an object")
    serials = {}
    for zone, serial in raw.items():
        try:
            valid_name = normalize_name(zone, "zone") == zone
        except ZoneError:
            valid_name = False
        if not valid_name:
            raise StatusError("serials has a key that is not a lowercase zone name")
        if type(serial) is not int or not 0 <= serial < SERIAL_SPACE:
            raise StatusError(f"serial of {zone} is not an integer in 0..2^32-1")
        serials[zone] = serial
    return serials


def parse_status(text: str | None) -> tuple[Status | None, str | None]:
    """(status, None), or (None, what is wrong) for a malformed annotation; (None, None) when
    there is none. Never raises, whatever the text: size is capped before parsing, nesting
    depth and number forms are refused by the parser, every field is type-checked."""
    if not text:
        return None, None
    if len(text) > STATUS_MAX_BYTES:
        return None, f"status annotation is {len(text)} characters, over {STATUS_MAX_BYTES}"
    try:
        data = json.loads(text, parse_constant=_reject_constant, parse_float=_reject_float)
        if not isinstance(data, dict):
            raise StatusError("status is not a JSON object")
        missing = [name for name in STATUS_FIELDS if name not in data]
        if missing:
            raise StatusError(f"status lacks {', '.join(missing)}")
        if type(data["healthy"]) is not bool:
            raise StatusError("healthy is not true or false")
        return Status(healthy=data["healthy"], serials=_serials(data["serials"])), None
    except StatusError as error:
        return None, str(error)
    except (ValueError, RecursionError, MemoryError) as error:  # JSON syntax, depth, huge numbers
        return None, f"status is not valid JSON ({type(error).__name__})"


def plausible_serials(published: Iterable[int], *, anchor: int) -> tuple[list[int], list[int]]:
    """(kept, ignored): published serials within SERIAL_WINDOW of anchor (the serial this pod
    serves) in serial arithmetic, in their order, and those further away."""
    kept: list[int] = []
    ignored: list[int] = []
    for serial in published:
        distance = (serial - anchor) % SERIAL_SPACE
        near = min(distance, SERIAL_SPACE - distance) <= SERIAL_WINDOW
        (kept if near else ignored).append(serial)
    return kept, ignored


def lift_problem(zone: str, *, before: int, target: int, after: int | None) -> str | None:
    """Why a serial lift failed, by the SOA read back after it (BIND answers NOERROR to an
    update whose serial it ignores), or None when the zone now serves target."""
    if after == target:
        return None
    if after is None:
        return f"{zone}: no SOA answer after setting the serial to {target}"
    if after == before:
        return f"{zone}: serial still {after} after setting it to {target}"
    return f"{zone}: serial {after} after setting it from {before} to {target}"


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


def followed_address(
    peers: Iterable[Peer], leader_identity: str | None, last_seen: tuple[str, str] | None
) -> tuple[str | None, tuple[str, str] | None]:
    """The address a secondary transfers from, and what to remember for the next round.

    The Lease holder's pod's IP while that pod is listed; while the same identity still holds
    the Lease but its pod is no longer listed (a forced deletion removes the object at once,
    while the pod's named still runs and acknowledges the writes kube-proxy sends it for a
    moment), the IP it last had: following it keeps those writes. A new holder, or none,
    ends that."""
    address = leader_address(peers, leader_identity)
    if address is not None and leader_identity is not None:
        return address, (leader_identity, address)
    if leader_identity is not None and last_seen is not None and last_seen[0] == leader_identity:
        return last_seen[1], last_seen
    return None, None


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


def behind_others(
    target: str, mine: Mapping[str, int], published: Mapping[str, Mapping[str, int]], zones: Iterable[str]
) -> list[str]:
    """Per zone, what target lacks against the newest serial another pod published (by pod
    name): no copy, or an older serial; each line names the pod that has the newest."""
    found = []
    for zone in zones:
        others = {
            name: serials[zone] for name, serials in published.items() if name != target and zone in serials
        }
        best = newest(others.values())
        if best is None:
            continue
        holder = min(name for name, serial in others.items() if serial == best)
        if zone not in mine:
            found.append(f"{zone}: {target} has no copy; {holder} has serial {best}")
        elif serial_newer(best, mine[zone]):
            found.append(f"{zone}: {target} has serial {mine[zone]}; {holder} has {best}")
    return found
