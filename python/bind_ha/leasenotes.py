"""What bind-ha keeps on its Lease besides the leader record: two annotations (pure).

Both are lists of zone names, comma-separated, lowercase, without trailing dots, e.g.
`dyn.example.com,ext.example.com`. PREFIX is BIND_HA_LABEL_PREFIX (`bind-ha.io`).

- `PREFIX/zones-with-data`: the dynamic zones that have ever taken clients' updates.
  Written by the leader in its renewals (no extra request). A dynamic zone takes
  updates only once it is listed here, and a listed zone is never seeded again from
  its source by an election: a candidate without data for it stands aside until a pod
  that has it is back, so an empty seed can never replace the records clients wrote.
- `PREFIX/reseed`: an operator's request to seed listed zones afresh from their source
  when no pod has their data any more (every volume lost). A candidate without data for
  a requested zone may then seed it; the primary removes the zone from the request once
  it is served (or at once when the primary already has its data: nothing is reseeded
  over existing records). Write it with
  `kubectl annotate lease RELEASE-bind-ha-leader bind-ha.io/reseed=ZONE[,ZONE]`.

Annotations are written by anyone allowed to edit the Lease: entries that are not zone
names are ignored (and reported), and the lists are capped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bind_ha.zonemodel import ZoneError, normalize_name

ZONES_WITH_DATA = "zones-with-data"
RESEED = "reseed"
MAX_ZONES = 10_000  # entries read from one annotation; more are ignored


@dataclass(frozen=True)
class ZoneList:
    """A parsed annotation: the valid zone names, and the entries that were not."""

    zones: frozenset[str] = frozenset()
    rejected: tuple[str, ...] = ()


def parse_zones(text: str | None) -> ZoneList:
    """Zone names from an annotation's text; blanks are skipped, invalid entries rejected."""
    if not text:
        return ZoneList()
    zones: set[str] = set()
    rejected: list[str] = []
    for raw in text.split(",")[:MAX_ZONES]:
        entry = raw.strip()
        if not entry:
            continue
        try:
            zones.add(normalize_name(entry, "zone"))
        except ZoneError:
            rejected.append(entry[:80])
    return ZoneList(frozenset(zones), tuple(rejected))


def format_zones(zones: Iterable[str]) -> str:
    """The annotation's text for zones: sorted, comma-separated."""
    return ",".join(sorted(set(zones)))


def key(prefix: str, name: str) -> str:
    return f"{prefix}/{name}"


@dataclass(frozen=True)
class LeaseNotes:
    """The two lists, as read from (or to be written to) the Lease."""

    zones_with_data: frozenset[str] = frozenset()
    reseed: frozenset[str] = frozenset()


def read(annotations: Mapping[str, str], prefix: str) -> tuple[LeaseNotes, tuple[str, ...]]:
    """The notes on a Lease, and a description of each entry that was ignored."""
    with_data = parse_zones(annotations.get(key(prefix, ZONES_WITH_DATA)))
    reseed = parse_zones(annotations.get(key(prefix, RESEED)))
    problems = tuple(
        f"{key(prefix, name)}: {entry!r} is not a zone name"
        for name, parsed in ((ZONES_WITH_DATA, with_data), (RESEED, reseed))
        for entry in parsed.rejected
    )
    return LeaseNotes(with_data.zones, reseed.zones), problems


def written(annotations: Mapping[str, str], prefix: str, notes: LeaseNotes) -> dict[str, str]:
    """annotations with the notes written in (an empty list removes its annotation); every
    other annotation is kept as it was."""
    updated = dict(annotations)
    for name, zones in ((ZONES_WITH_DATA, notes.zones_with_data), (RESEED, notes.reseed)):
        if zones:
            updated[key(prefix, name)] = format_zones(zones)
        else:
            updated.pop(key(prefix, name), None)
    return updated


def may_seed(zone: str, notes: LeaseNotes) -> bool:
    """An election may seed a dynamic zone from its source only if it never held data, or if
    an operator asked for it to be reseeded."""
    return zone not in notes.zones_with_data or zone in notes.reseed


def after_renewal(notes: LeaseNotes, *, serving: Iterable[str], dynamic: Iterable[str]) -> LeaseNotes:
    """What the primary writes in its next renewal: every dynamic zone it serves now holds data
    (clients may write to it once it is listed), and a reseed request is settled for every
    zone the primary serves: it was either seeded as asked, or already had data to keep."""
    served = frozenset(serving)
    return LeaseNotes(notes.zones_with_data | (served & frozenset(dynamic)), notes.reseed - served)
