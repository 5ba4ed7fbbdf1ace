"""named.conf rendering from the template next to this file (jinja2)."""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import jinja2

from bind_ha.clients import Client
from bind_ha.keys import Keys, TsigKey
from bind_ha.peers import PRIMARY, SECONDARY
from bind_ha.settings import RateLimit, Settings
from bind_ha.zonemodel import ZoneSpec

TEMPLATE = "named.conf.j2"
# A secondary must name a primary even before any is known: this one is on
# loopback, where nothing listens, so refreshes fail fast and harmlessly.
NO_PRIMARY = ("127.0.0.1", 9)


@dataclass(frozen=True)
class NamedView:
    """Everything named.conf depends on; equal views render equal files."""

    identity: str
    role: str
    zones: tuple[ZoneSpec, ...]
    primary_address: str | None  # the leader's IP, for a secondary
    peers: tuple[str, ...]  # IPs the primary notifies
    keys: tuple[TsigKey, ...]
    transfer_key: str
    update_key: str
    rndc_key_name: str
    dns_port: int
    listen_address: str
    control_address: str
    control_port: int
    stats_port: int
    data_dir: Path
    run_dir: Path
    writable: bool = True  # a primary's dynamic zones take clients' updates (False while promoting)
    clients: tuple[Client, ...] = ()  # per-client keys with narrowed grants (their keys are in keys)
    update_key_transfers: str = "dynamic"  # zones the update key may AXFR: none, dynamic, all
    update_forwarding: bool = True  # secondaries forward signed updates to the primary
    rrl: RateLimit | None = None


@dataclass(frozen=True)
class ZoneAccess:
    """Who may do what to one zone, as named.conf says it."""

    transfer: tuple[str, ...]  # keys allowed to AXFR/IXFR
    grants: tuple[tuple[str, str], ...]  # (key, "match [name.] types") update-policy rules
    forward: tuple[str, ...]  # keys whose updates a secondary forwards


def zone_access(view: NamedView, zone: ZoneSpec) -> ZoneAccess:
    """The transfer key always transfers; the update key transfers dynamic zones (or every
    zone, or none: update_key_transfers) and may change anything in a dynamic zone; each client
    only what its grants say, and transfers only the zones it covers when it may."""
    transfer = [view.transfer_key]
    if view.update_key_transfers == "all" or (view.update_key_transfers == "dynamic" and zone.dynamic):
        transfer.append(view.update_key)
    transfer += [c.name for c in view.clients if c.transfer and c.covers(zone.name, zone.dynamic)]
    if not zone.dynamic:
        return ZoneAccess(tuple(transfer), (), ())
    grants = [(view.update_key, "zonesub ANY")]
    grants += [(c.name, rule.rule) for c in view.clients for rule in c.rules_for(zone.name)]
    forward = tuple(dict.fromkeys(key for key, _rule in grants)) if view.update_forwarding else ()
    return ZoneAccess(tuple(transfer), tuple(grants), forward)


def _listen(address: str) -> tuple[str, str]:
    """(IPv4 list, IPv6 list) for listen-on and listen-on-v6."""
    if address == "any":
        return "any", "any"
    if ipaddress.ip_address(address).version == 6:
        return "none", address
    return address, "none"


@functools.cache
def _template() -> jinja2.Template:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    return environment.get_template(TEMPLATE)


def render(view: NamedView) -> str:
    if view.role not in (PRIMARY, SECONDARY):
        raise ValueError(f"unknown role {view.role!r}")
    listen_v4, listen_v6 = _listen(view.listen_address)
    primary_address, primary_port = (
        (view.primary_address, view.dns_port) if view.primary_address else NO_PRIMARY
    )
    context = {name: getattr(view, name) for name in view.__dataclass_fields__}
    context.update(
        listen_v4=listen_v4,
        listen_v6=listen_v6,
        primary_address=primary_address,
        primary_port=primary_port,
        access={zone.name: zone_access(view, zone) for zone in view.zones},
    )
    return _template().render(**context)


def view_for(
    settings: Settings,
    keys: Keys,
    *,
    role: str,
    zones: tuple[ZoneSpec, ...],
    primary_address: str | None,
    peers: tuple[str, ...],
    writable: bool = True,
) -> NamedView:
    """The view of this pod's named.conf for a role; everything else comes from settings."""
    return NamedView(
        writable=writable,
        identity=settings.identity,
        role=role,
        zones=zones,
        primary_address=primary_address,
        peers=peers if role == PRIMARY else (),
        keys=(keys.transfer, keys.update, keys.rndc, *keys.clients),
        transfer_key=keys.transfer.name,
        update_key=keys.update.name,
        rndc_key_name=keys.rndc.name,
        dns_port=settings.dns_port,
        listen_address=settings.listen_address,
        control_address=settings.control_address,
        control_port=settings.control_port,
        stats_port=settings.stats_port,
        data_dir=settings.data_dir,
        run_dir=settings.run_dir,
        clients=settings.tsig_clients,
        update_key_transfers=settings.update_key_transfers,
        update_forwarding=settings.update_forwarding,
        rrl=settings.rrl,
    )
