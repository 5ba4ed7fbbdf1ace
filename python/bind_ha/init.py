"""The init container: keys, directories and a safe first named.conf.

The first config is always a secondary one (never primary before the election
says so), pointing at the current leader when the API can tell us who it is.
"""

from __future__ import annotations

import logging

from bind_ha import peers
from bind_ha.bind import checkconf
from bind_ha.catalog import catalog_for
from bind_ha.keys import load_keys, private_write
from bind_ha.kube import ApiUnavailable, Kube
from bind_ha.layout import Layout, views
from bind_ha.peers import SECONDARY
from bind_ha.render import render, view_for
from bind_ha.runstate import AppliedZone, RunDir
from bind_ha.settings import Settings
from bind_ha.zonestore import ZoneStore

log = logging.getLogger("bind_ha.init")
LOOKUP_TIMEOUT = 3.0


class InitError(RuntimeError):
    pass


def current_leader_address(kube: Kube | None) -> str | None:
    """Best effort: a pod starting during an API outage still starts, pointing nowhere yet."""
    if kube is None:
        return None
    try:
        record, _version, _meta = kube.read_lease(LOOKUP_TIMEOUT)
        holder = record.holder if record else None
        return peers.leader_address(kube.list_peers(LOOKUP_TIMEOUT), holder or None)
    except ApiUnavailable as error:
        log.warning("leader unknown (%s); secondaries will be re-pointed by the agent", error)
        return None


def initialize(settings: Settings, kube: Kube | None) -> None:
    run = RunDir(settings.run_dir)
    store = ZoneStore(settings.data_dir)
    store.adopt_flat_layout()
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    keys = load_keys(settings)
    catalog = catalog_for(settings)
    for error in catalog.refresh().errors:
        log.error("zone source rejected (zone left out until fixed): %s", error)
    layout = Layout(serving=store.serving(), role=SECONDARY)
    leader = current_leader_address(kube)
    view = view_for(
        settings,
        keys,
        views=views(layout, leader=leader, writable=frozenset()),
        zones=tuple(catalog.specs()),
        peers=(),
    )
    private_write(run.named_conf, render(view))
    problem = checkconf(run.named_conf)
    if problem is not None:
        raise InitError(f"the first named.conf is invalid: {problem}")
    run.set_role(SECONDARY)
    run.set_layout(layout.serving, layout.role, layout.staged)
    run.set_valid_until(0.0)
    run.set_zones([AppliedZone(zone.name, zone.dynamic) for zone in view.zones])
    run.clear_markers()
    log.info("init: %d zone(s), secondary of %s", len(view.zones), leader or "nobody yet")
