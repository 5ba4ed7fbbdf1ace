"""The zone model: zones declared in values (zones.yaml) or as NAME.zone files.

Pure: parsing and validating declarations, and generating zone-file text.
Checking the records is BIND's job (zonefiles.py runs named-compilezone), but
before BIND sees a text it must pass check_text: no `$INCLUDE` (the only way a
zone file can make the compiler read another file, such as a TSIG key), at most
GENERATE_CAP names from `$GENERATE`, no control characters, and within the
size and record limits (ZoneLimits), so that compiling can neither read a
secret nor take minutes and gigabytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

STATIC = "static"
DYNAMIC = "dynamic"
ZONE_TYPES = (STATIC, DYNAMIC)
LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")  # always used with fullmatch
# A domain name in a header field (name server, SOA mname/rname), relative or absolute:
# letters, digits, '-' and '_' only, so it cannot carry a quote, a space or a newline.
_HEADER_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
HEADER_NAME = re.compile(rf"({_HEADER_LABEL}\.)*{_HEADER_LABEL}\.?")
INCLUDE = re.compile(r"\$include", re.IGNORECASE)
GENERATE = re.compile(r"\$generate\b[ \t]*(\S*)", re.IGNORECASE)
GENERATE_RANGE = re.compile(r"(\d{1,10})-(\d{1,10})(?:/(\d{1,10}))?")
GENERATE_CAP = 65_536  # names all $GENERATE lines of one zone may produce together
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
SOA_FIELDS = ("mname", "rname", "refresh", "retry", "expire", "minimum")
SOA_DEFAULTS = {"refresh": 3600, "retry": 600, "expire": 1209600, "minimum": 300}
ZONE_KEYS = {"name", "type", "ttl", "soa", "nameservers", "records", "file"}


class ZoneError(ValueError):
    """A zone declaration or its text is invalid; the message names the zone and field or line."""


@dataclass(frozen=True)
class ZoneLimits:
    """What one zone source may cost (settings BIND_HA_ZONE_*; chart values zoneLimits)."""

    max_bytes: int = 16 * 2**20  # UTF-8 size of the source text
    max_records: int = 250_000  # lines plus names $GENERATE makes (an upper bound of records)
    compile_seconds: float = 30.0  # each named-compilezone run
    compile_memory: int = 512 * 2**20  # data segment of each named-compilezone run, bytes


DEFAULT_LIMITS = ZoneLimits()


def _generated_names(text: str, where: str) -> int:
    """How many names the `$GENERATE` lines of text make; ZoneError past GENERATE_CAP or when a
    range is not the plain `start-stop[/step]` we can count (BIND accepts quoted and
    parenthesised forms: refusing them is what makes the count trustworthy)."""
    total = 0
    for match in GENERATE.finditer(text):
        found = GENERATE_RANGE.fullmatch(match[1])
        if found is None:
            raise ZoneError(f"{where}: $GENERATE range {match[1][:40]!r} is not start-stop[/step]")
        start, stop, step = int(found[1]), int(found[2]), int(found[3] or 1)
        if stop < start or step < 1:
            raise ZoneError(f"{where}: $GENERATE range {match[1]!r} is empty or backwards")
        total += (stop - start) // step + 1
        if total > GENERATE_CAP:
            raise ZoneError(f"{where}: $GENERATE lines make over {GENERATE_CAP} names (the limit)")
    return total


def check_text(text: str, where: str, limits: ZoneLimits = DEFAULT_LIMITS) -> None:
    """Refuse, before any compiler sees it, zone text that could read files or cost too much."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise ZoneError(f"{where}: {size} bytes, over the {limits.max_bytes}-byte limit")
    if INCLUDE.search(text):
        raise ZoneError(f"{where}: $INCLUDE is not allowed (a zone source must be self-contained)")
    control = CONTROL.search(text)
    if control:
        line = text.count("\n", 0, control.start()) + 1
        raise ZoneError(f"{where}: line {line}: control character {control[0]!r} is not allowed")
    records = text.count("\n") + 1 + _generated_names(text, where)
    if records > limits.max_records:
        raise ZoneError(
            f"{where}: {records} lines and generated names, over the limit of {limits.max_records} records"
        )


def header_name(raw: object, where: str) -> str:
    """A name server or SOA name as written in values: a domain name, relative or absolute."""
    if not isinstance(raw, str) or len(raw) > 254 or not HEADER_NAME.fullmatch(raw):
        raise ZoneError(f"{where}: {str(raw)[:80]!r} is not a domain name")
    return raw


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
    if not raw.isascii():
        raise ZoneError(f"{where}: name {raw!r} is not a valid domain name (ASCII only; use punycode)")
    name = raw.strip().lower().removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(LABEL.fullmatch(label) for label in labels):
        raise ZoneError(f"{where}: name {raw!r} is not a valid domain name")
    return name


def absolute(name: str) -> str:
    return name if name.endswith(".") else f"{name}."


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value >= 2**31:
        raise ZoneError(f"{where} must be a positive integer below 2^31 (got {value!r})")
    return value


def _generated_text(name: str, zone: Mapping[str, Any], where: str, limits: ZoneLimits) -> tuple[str, int]:
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
    nameservers = [header_name(server, f"{where}.nameservers[{i}]") for i, server in enumerate(nameservers)]
    mname = header_name(soa.get("mname") or nameservers[0], f"{where}.soa.mname")
    rname = header_name(soa.get("rname") or f"hostmaster.{name}.", f"{where}.soa.rname")
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
    check_text(records, f"{where}.records", limits)
    return "\n".join(header) + "\n" + records.rstrip("\n") + "\n", len(header)


def parse_zone(zone: object, index: int, origin: str, limits: ZoneLimits = DEFAULT_LIMITS) -> ZoneSpec:
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
        check_text(zone["file"], f"{where}.file", limits)
        return ZoneSpec(name=name, type=kind, text=zone["file"], origin=where)
    text, offset = _generated_text(name, zone, where, limits)
    return ZoneSpec(name=name, type=kind, text=text, origin=where, body_offset=offset)


def parse_zones(declared: object, origin: str, limits: ZoneLimits = DEFAULT_LIMITS) -> list[ZoneSpec]:
    """The zones of zones.yaml; ZoneError names the first bad zone and field."""
    if declared is None:
        return []
    if not isinstance(declared, list):
        raise ZoneError(f"{origin}: must be a list of zones")
    return [parse_zone(zone, index, origin, limits) for index, zone in enumerate(declared)]


def zone_from_file(
    file_name: str, text: str, kind: str, origin: str, limits: ZoneLimits = DEFAULT_LIMITS
) -> ZoneSpec:
    """A zone from a NAME.zone file of a zones directory (ConfigMap or volume)."""
    where = f"{origin}/{file_name}"
    name = normalize_name(file_name.removesuffix(".zone"), where)
    check_text(text, where, limits)
    return ZoneSpec(name=name, type=kind, text=text, origin=where)


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
