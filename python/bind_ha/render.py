"""named.conf rendering from the template next to this file (jinja2).

Zones live in named views, so that a role switch never leaves a zone unanswered:
changing a zone's type makes named drop it and load it again (SERVFAIL for as long
as the load takes, ~0.25 s for 100,000 records), but a zone whose configuration is
unchanged survives a reconfig untouched. So the zones in their next role are first
loaded in a second, *staging* view that only the agent's own key reaches; once
loaded (and, for a primary, its serials lifted), a reconfig makes the staging view
the one that answers everybody, and drops the old one. The two views take turns
under the names BLUE and GREEN, each with its own zone directory.
"""

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
BLUE, GREEN = "blue", "green"
VIEWS = (BLUE, GREEN)
# A secondary must name a primary even before any is known: this one is on
# loopback, where nothing listens, so refreshes fail fast and harmlessly.
NO_PRIMARY = ("127.0.0.1", 9)


def other_view(name: str) -> str:
    return GREEN if name == BLUE else BLUE


def zone_directory(view: str) -> str:
    """Where a view's zone files are, relative to the data directory."""
    return f"zones/{view}"


@dataclass(frozen=True)
class ViewSpec:
    """One named view: its zones' role, and whether it answers everybody or only the agent."""

    name: str  # BLUE or GREEN
    role: str
    staging: bool = False  # matched only by requests signed with the pod-local rndc key
    primary_address: str | None = None  # the leader's IP, for a secondary
    # Dynamic zones that take clients' updates (primary); the others only the agent's key.
    writable: frozenset[str] = frozenset()

    @property
    def zone_directory(self) -> str:
        return zone_directory(self.name)


@dataclass(frozen=True)
class NamedView:
    """Everything named.conf depends on; equal views render equal files."""

    identity: str
    views: tuple[ViewSpec, ...]  # a staging view first: the first view that matches answers
    zones: tuple[ZoneSpec, ...]
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
    clients: tuple[Client, ...] = ()  # per-client keys with narrowed grants (their keys are in keys)
    update_key_transfers: str = "dynamic"  # zones the update key may AXFR: none, dynamic, all
    update_forwarding: bool = True  # secondaries forward signed updates to the primary
    rrl: RateLimit | None = None

    @property
    def serving(self) -> ViewSpec:
        """The view that answers everybody."""
        return next(view for view in self.views if not view.staging)


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


def _check_views(views: tuple[ViewSpec, ...]) -> None:
    serving = [view for view in views if not view.staging]
    if len(serving) != 1 or len({view.name for view in views}) != len(views):
        raise ValueError(f"need exactly one serving view and distinct names, got {views!r}")
    for view in views:
        if view.role not in (PRIMARY, SECONDARY) or view.name not in VIEWS:
            raise ValueError(f"unknown role or view name in {view!r}")


def render(view: NamedView) -> str:
    _check_views(view.views)
    listen_v4, listen_v6 = _listen(view.listen_address)
    views = [
        {
            "name": spec.name,
            "role": spec.role,
            "staging": spec.staging,
            "zone_directory": spec.zone_directory,
            "writable": spec.writable,
            "primary_address": spec.primary_address or NO_PRIMARY[0],
            "primary_port": view.dns_port if spec.primary_address else NO_PRIMARY[1],
        }
        for spec in sorted(view.views, key=lambda spec: not spec.staging)
    ]
    context = {name: getattr(view, name) for name in view.__dataclass_fields__}
    context.update(
        listen_v4=listen_v4,
        listen_v6=listen_v6,
        views=views,
        access={zone.name: zone_access(view, zone) for zone in view.zones},
    )
    return _template().render(**context)


def view_for(
    settings: Settings,
    keys: Keys,
    *,
    views: tuple[ViewSpec, ...],
    zones: tuple[ZoneSpec, ...],
    peers: tuple[str, ...],
) -> NamedView:
    """This pod's named.conf with the given views; everything else comes from settings."""
    return NamedView(
        identity=settings.identity,
        views=views,
        zones=zones,
        peers=peers,
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
