"""Per-client TSIG keys and what each may change (pure).

The chart's `tsig.clients` arrive as JSON in BIND_HA_TSIG_CLIENTS. Each client has
its own key (secret file `client-NAME` in the TSIG directory) and BIND
`update-policy` grants narrower than the update key's `zonesub ANY`:

- preset `external-dns`: A, AAAA, CNAME and TXT records anywhere in the zone, or
  only under `names` (never the apex NS or SOA); may transfer (AXFR) the zones
  it updates, because ExternalDNS lists records that way;
- preset `acme`: TXT records at `_acme-challenge.NAME` for each of `names` only;
- `grants`: rules of your own (`match`: name, subdomain, wildcard or zonesub).

`zones` limits a client to some zones (default: every dynamic zone); `transfer`
lets it AXFR those zones. Every name and type is checked here, because it is
written into named.conf.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bind_ha.zonemodel import ZoneError, normalize_name

EXTERNAL_DNS = "external-dns"
ACME = "acme"
PRESETS = (EXTERNAL_DNS, ACME)
EXTERNAL_DNS_TYPES = ("A", "AAAA", "CNAME", "TXT")
ACME_LABEL = "_acme-challenge"
MATCHES = ("name", "subdomain", "wildcard", "zonesub")
RECORD_TYPES = (
    "A", "AAAA", "CAA", "CNAME", "DNAME", "DS", "HTTPS", "MX", "NAPTR", "NS", "PTR", "SOA",
    "SRV", "SSHFP", "SVCB", "TLSA", "TXT", "ANY",
)  # fmt: skip
CLIENT_FIELDS = {"name", "preset", "names", "zones", "grants", "transfer"}
GRANT_FIELDS = {"match", "name", "types"}
MAX_CLIENTS = 64
MAX_ITEMS = 256  # names, zones, grants or types of one client
SECRET_PREFIX = "client-"


class ClientError(ValueError):
    """A client entry is invalid; the message names it and its field (clients[i].field)."""


@dataclass(frozen=True)
class Grant:
    """One update-policy rule: `grant KEY match [name.] types;` (name is None for zonesub)."""

    match: str
    name: str | None
    types: tuple[str, ...]

    def within(self, zone: str) -> bool:
        if self.name is None:
            return True
        base = self.name.removeprefix("*.")
        return base == zone or base.endswith(f".{zone}")

    @property
    def rule(self) -> str:
        name = f" {self.name}." if self.name is not None else ""
        return f"{self.match}{name} {' '.join(self.types)}"


@dataclass(frozen=True)
class Client:
    name: str  # the TSIG key's name
    grants: tuple[Grant, ...]
    zones: tuple[str, ...] = ()  # empty: every dynamic zone
    transfer: bool = False

    @property
    def secret_file(self) -> str:
        return f"{SECRET_PREFIX}{self.name}"

    def covers(self, zone: str, dynamic: bool) -> bool:
        """Whether this client's rights extend to zone at all."""
        return zone in self.zones if self.zones else dynamic

    def rules_for(self, zone: str) -> tuple[Grant, ...]:
        return tuple(grant for grant in self.grants if grant.within(zone)) if self.covers(zone, True) else ()


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise ClientError(f"{where} must be a list of at most {MAX_ITEMS} items")
    return value


def _items(raw: Mapping[str, Any], field: str, where: str) -> list[tuple[int, Any]]:
    return list(enumerate(_list(raw.get(field), f"{where}.{field}")))


def _name(raw: object, where: str, *, wildcard: bool = False) -> str:
    text = raw if isinstance(raw, str) else None
    prefix = "*." if wildcard and text is not None and text.startswith("*.") else ""
    try:
        return prefix + normalize_name(text.removeprefix(prefix) if text is not None else raw, where)
    except ZoneError:
        raise ClientError(f"{where}: {str(raw)[:80]!r} is not a domain name") from None


def _types(raw: object, where: str) -> tuple[str, ...]:
    types = _list(raw, where)
    if not types:
        raise ClientError(f"{where} must list at least one record type")
    for index, kind in enumerate(types):
        if kind not in RECORD_TYPES:
            raise ClientError(f"{where}[{index}]: {str(kind)[:20]!r} is not one of {', '.join(RECORD_TYPES)}")
    return tuple(dict.fromkeys(types))


def _mapping(raw: object, fields: set[str], where: str) -> Mapping[str, Any]:
    """raw as a mapping holding only the given fields; ClientError naming where otherwise."""
    if not isinstance(raw, Mapping):
        raise ClientError(f"{where} must be a mapping of {', '.join(sorted(fields))}")
    unknown = set(raw) - fields
    if unknown:
        raise ClientError(f"{where} has unknown field(s): {', '.join(sorted(map(str, unknown)))[:80]}")
    return raw


def _grant(raw: object, where: str) -> Grant:
    raw = _mapping(raw, GRANT_FIELDS, where)
    match = raw.get("match")
    if match not in MATCHES:
        raise ClientError(f"{where}.match must be one of {', '.join(MATCHES)}")
    types = _types(raw.get("types"), f"{where}.types")
    if match == "zonesub":
        if raw.get("name") is not None:
            raise ClientError(f"{where}.name: a zonesub grant covers the whole zone and takes no name")
        return Grant(match, None, types)
    name = _name(raw.get("name"), f"{where}.name", wildcard=match == "wildcard")
    if match == "wildcard" and not name.startswith("*."):
        raise ClientError(f"{where}.name: a wildcard grant's name starts with '*.'")
    return Grant(match, name, types)


def _preset_grants(preset: object, names: list[str], where: str) -> list[Grant]:
    if preset is None:
        return []
    if preset == EXTERNAL_DNS:
        if not names:
            return [Grant("zonesub", None, EXTERNAL_DNS_TYPES)]
        return [Grant("subdomain", name, EXTERNAL_DNS_TYPES) for name in names]
    if preset == ACME:
        if not names:
            raise ClientError(f"{where}.names: the acme preset needs the domains it may prove")
        return [Grant("name", f"{ACME_LABEL}.{name}", ("TXT",)) for name in names]
    raise ClientError(f"{where}.preset must be one of {', '.join(PRESETS)}")


def parse_client(raw: object, where: str) -> Client:
    raw = _mapping(raw, CLIENT_FIELDS, where)
    name = _name(raw.get("name"), f"{where}.name")
    where = f"{where} ({name})"
    names = [_name(item, f"{where}.names[{i}]") for i, item in _items(raw, "names", where)]
    zones = [_name(item, f"{where}.zones[{i}]") for i, item in _items(raw, "zones", where)]
    grants = _preset_grants(raw.get("preset"), names, where)
    grants += [_grant(item, f"{where}.grants[{i}]") for i, item in _items(raw, "grants", where)]
    if not grants:
        raise ClientError(f"{where}: give a preset ({', '.join(PRESETS)}) or grants")
    transfer = raw.get("transfer", raw.get("preset") == EXTERNAL_DNS)
    if not isinstance(transfer, bool):
        raise ClientError(f"{where}.transfer must be true or false")
    return Client(name, tuple(dict.fromkeys(grants)), tuple(dict.fromkeys(zones)), transfer)


def parse_clients(text: str) -> tuple[Client, ...]:
    """The clients of BIND_HA_TSIG_CLIENTS (a JSON list); ClientError names the bad entry."""
    if not text.strip():
        return ()
    try:
        declared = json.loads(text)
    except (ValueError, RecursionError):
        raise ClientError("not a JSON list of clients") from None
    if not isinstance(declared, list) or len(declared) > MAX_CLIENTS:
        raise ClientError(f"must be a JSON list of at most {MAX_CLIENTS} clients")
    clients = tuple(parse_client(entry, f"clients[{index}]") for index, entry in enumerate(declared))
    seen: set[str] = set()
    for index, client in enumerate(clients):
        if client.name in seen:
            raise ClientError(f"clients[{index}].name: key {client.name} is given twice")
        seen.add(client.name)
    return clients
