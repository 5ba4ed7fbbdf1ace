"""The zone model: zones declared in values (zones.yaml) or as NAME.zone files.

Pure: parsing and validating declarations, and generating zone-file text.
Checking the text itself is BIND's job (zonefiles.py runs named-compilezone).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STATIC = "static"
DYNAMIC = "dynamic"
ZONE_TYPES = (STATIC, DYNAMIC)
LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
SOA_FIELDS = ("mname", "rname", "refresh", "retry", "expire", "minimum")
SOA_DEFAULTS = {"refresh": 3600, "retry": 600, "expire": 1209600, "minimum": 300}
ZONE_KEYS = {"name", "type", "ttl", "soa", "nameservers", "records", "file"}


class ZoneError(ValueError):
    """A zone declaration or its text is invalid; the message names the zone and field or line."""


@dataclass(frozen=True)
class ZoneSpec:
    """One zone as its source declares it.

    text is a complete zone file; body_offset is the number of generated lines
    before the user's `records`, so BIND's line numbers map back to them.
    """

    name: str
    type: str
    text: str
    origin: str
    body_offset: int = 0

    @property
    def dynamic(self) -> bool:
        return self.type == DYNAMIC

    @property
    def file_name(self) -> str:
        return f"{self.name}.db"


def normalize_name(raw: object, where: str) -> str:
    """A zone name, lowercase, without the trailing dot; ZoneError if it is not a domain."""
    if not isinstance(raw, str) or not raw.strip():
        raise ZoneError(f"{where}: name must be a non-empty domain name")
    name = raw.strip().lower().removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(LABEL.match(label) for label in labels):
        raise ZoneError(f"{where}: name {raw!r} is not a valid domain name")
    return name


def absolute(name: str) -> str:
    return name if name.endswith(".") else f"{name}."


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value >= 2**31:
        raise ZoneError(f"{where} must be a positive integer below 2^31 (got {value!r})")
    return value


def _generated_text(name: str, zone: Mapping[str, Any], where: str) -> tuple[str, int]:
    """Zone text from ttl/soa/nameservers/records; returns (text, lines before records)."""
    soa = zone.get("soa") or {}
    if not isinstance(soa, Mapping):
        raise ZoneError(f"{where}.soa must be a mapping")
    unknown = set(soa) - set(SOA_FIELDS)
    if unknown:
        raise ZoneError(f"{where}.soa has unknown field(s): {', '.join(sorted(unknown))}")
    nameservers = zone.get("nameservers") or []
    if not isinstance(nameservers, list) or not nameservers:
        raise ZoneError(f"{where}.nameservers must list at least one name server")
    mname = soa.get("mname") or nameservers[0]
    rname = soa.get("rname") or f"hostmaster.{name}."
    timers = [
        _positive_int(soa.get(field, SOA_DEFAULTS[field]), f"{where}.soa.{field}")
        for field in ("refresh", "retry", "expire", "minimum")
    ]
    ttl = _positive_int(zone.get("ttl", 3600), f"{where}.ttl")
    header = [
        f"$ORIGIN {absolute(name)}",
        f"$TTL {ttl}",
        f"@ IN SOA {mname} {rname} 1 {' '.join(map(str, timers))}",
    ]
    header += [f"@ IN NS {server}" for server in nameservers]
    records = zone.get("records") or ""
    if not isinstance(records, str):
        raise ZoneError(f"{where}.records must be zone-file text")
    return "\n".join(header) + "\n" + records.rstrip("\n") + "\n", len(header)


def parse_zone(zone: object, index: int, origin: str) -> ZoneSpec:
    where = f"{origin}: zones[{index}]"
    if not isinstance(zone, Mapping):
        raise ZoneError(f"{where} must be a mapping")
    name = normalize_name(zone.get("name"), where)
    where = f"{origin}: zone {name}"
    unknown = set(zone) - ZONE_KEYS
    if unknown:
        raise ZoneError(f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
    kind = zone.get("type", STATIC)
    if kind not in ZONE_TYPES:
        raise ZoneError(f"{where}: type must be static or dynamic (got {kind!r})")
    if zone.get("file") is not None:
        if zone.get("records") or zone.get("soa") or zone.get("nameservers"):
            raise ZoneError(f"{where}: give either file or soa/nameservers/records, not both")
        if not isinstance(zone["file"], str) or not zone["file"].strip():
            raise ZoneError(f"{where}.file must be zone-file text")
        return ZoneSpec(name=name, type=kind, text=zone["file"], origin=where)
    text, offset = _generated_text(name, zone, where)
    return ZoneSpec(name=name, type=kind, text=text, origin=where, body_offset=offset)


def parse_zones(declared: object, origin: str) -> list[ZoneSpec]:
    """The zones of zones.yaml; ZoneError names the first bad zone and field."""
    if declared is None:
        return []
    if not isinstance(declared, list):
        raise ZoneError(f"{origin}: must be a list of zones")
    return [parse_zone(zone, index, origin) for index, zone in enumerate(declared)]


def zone_from_file(file_name: str, text: str, kind: str, origin: str) -> ZoneSpec:
    """A zone from a NAME.zone file of a zones directory (ConfigMap or volume)."""
    name = normalize_name(file_name.removesuffix(".zone"), f"{origin}/{file_name}")
    return ZoneSpec(name=name, type=kind, text=text, origin=f"{origin}/{file_name}")


def merge(sources: Iterable[list[ZoneSpec]]) -> list[ZoneSpec]:
    """All zones of all sources; a zone declared twice is an error naming both places."""
    seen: dict[str, ZoneSpec] = {}
    for zones in sources:
        for zone in zones:
            if zone.name in seen:
                raise ZoneError(
                    f"zone {zone.name} is declared twice: {seen[zone.name].origin} and {zone.origin}"
                )
            seen[zone.name] = zone
    return sorted(seen.values(), key=lambda zone: zone.name)
