"""This pod's named in its role: config, promotion, demotion, fencing, zone data.

The agent decides *whether* this pod leads; LocalBind makes named match that
decision and keeps its data right across every change of role:

- promote: static zones are written from their source with a serial above any
  pod's, dynamic zones without data are seeded, the primary config is applied,
  and every dynamic serial is lifted far above anything published (no forks);
- demote: writes are frozen first, the secondary config follows the new
  primary, and dynamic zones are re-fetched whole (our history may have forked);
- follow: a secondary re-points to the leader and asks for a refresh whenever
  the primary changes, because BIND does not transfer on a config change.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bind_ha import peers, soa, zonefiles
from bind_ha.bind import Bind, BindError, checkconf
from bind_ha.catalog import Catalog
from bind_ha.clock import Clock
from bind_ha.keys import Keys, private_write
from bind_ha.metrics import Metrics
from bind_ha.peers import PRIMARY, SECONDARY, Peer, Status
from bind_ha.render import NamedView, render, view_for
from bind_ha.runstate import WAS_PRIMARY, AppliedZone, RunDir
from bind_ha.settings import Settings
from bind_ha.zonemodel import ZoneError

log = logging.getLogger("bind_ha.roles")
Events = Callable[[str, str, bool], None]  # (reason, message, warning): a Kubernetes Event
REFRESH_INTERVAL = 5.0  # seconds between refreshes asked for a zone that is not in step yet
ZONE_LOAD_WAIT = 30.0  # seconds a promoted zone may take to load before promotion fails


class ConfigRejected(Exception):
    """named-checkconf refused a rendering; the running config stays."""


class PromotionFailed(Exception):
    """named could not be made primary; the message says which step failed."""


@dataclass
class BindState:
    role: str  # what named is configured as
    fenced: bool = False  # primary whose dynamic zones are frozen
    applied_conf: str | None = None
    rejected_conf: str | None = None  # last rendering named-checkconf refused (reported once)
    applied_zones: frozenset[str] = frozenset()
    primary_address: str | None = None
    # Dynamic zones whose local history must be replaced by the primary's, and which of
    # them we already asked BIND to re-fetch (`rndc retransfer`).
    must_refetch: frozenset[str] = frozenset()
    refetch_asked: frozenset[str] = frozenset()
    refresh_asked: dict[str, float] = field(default_factory=dict)
    last_serials: dict[str, int] = field(default_factory=dict)
    # Per zone, the primary (address) and the serial it served when first asked: reaching that
    # serial is "caught up", so a steady stream of updates cannot keep a restarted pod unready.
    catch_up: dict[str, tuple[str, int]] = field(default_factory=dict)


class LocalBind:
    def __init__(
        self,
        *,
        settings: Settings,
        keys: Keys,
        bind: Bind,
        catalog: Catalog,
        run: RunDir,
        metrics: Metrics,
        clock: Clock,
        events: Events,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.bind = bind
        self.catalog = catalog
        self.run = run
        self.metrics = metrics
        self.clock = clock
        self.events = events
        self.state = BindState(role=run.role())
        self.zones_dir = settings.data_dir / "zones"
        self.was_primary = settings.data_dir / WAS_PRIMARY

    def dynamic_zones(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self.catalog.specs() if spec.dynamic)

    def recover_after_restart(self) -> None:
        """Before a restart this pod was primary: its dynamic zones may hold updates nobody
        else has. Once it follows a primary, it re-fetches them whole."""
        if self.was_primary.exists():
            self.state.must_refetch = self.dynamic_zones()

    # ---- named.conf ---------------------------------------------------------------------------

    def view(
        self, role: str, pods: list[Peer], primary_address: str | None, *, writable: bool = True
    ) -> NamedView:
        return view_for(
            self.settings,
            self.keys,
            role=role,
            zones=tuple(self.catalog.specs()),
            primary_address=primary_address,
            peers=peers.notify_targets(pods, self.settings.pod_name),
            writable=writable,
        )

    def apply(self, view: NamedView) -> bool:
        """Render, validate with named-checkconf, install and `rndc reconfig`. False: nothing changed."""
        text = render(view)
        if text == self.state.applied_conf:
            return False
        candidate = self.run.path / "named.conf.next"
        private_write(candidate, text)
        problem = checkconf(candidate)
        if problem is not None:
            self._config_failure(text, f"rendered named.conf rejected by named-checkconf: {problem}")
            raise ConfigRejected(problem)
        candidate.replace(self.run.named_conf)
        self.state.applied_conf = None  # until named has taken it, the file on disk is not "applied"
        try:
            self.bind.reconfig()
        except BindError as error:
            self._config_failure(text, str(error))
            raise
        self.state.applied_conf = text
        self.state.applied_zones = frozenset(zone.name for zone in view.zones)
        synced = {zone.name for zone in self.run.zones() or [] if zone.synced}
        self.run.set_zones([AppliedZone(z.name, z.dynamic, z.name in synced) for z in view.zones])
        self.metrics.inc("bind_ha_reconfigurations_total")
        return True

    def _config_failure(self, text: str, message: str) -> None:
        self.metrics.inc("bind_ha_reconfiguration_failures_total")
        if text == self.state.rejected_conf:
            return  # already reported; the next different rendering is tried again
        self.state.rejected_conf = text
        log.error("%s", message)
        self.events("ReconfigureFailed", message, True)

    # ---- becoming primary -----------------------------------------------------------------------

    def promote(self, pods: list[Peer], still_leading: Callable[[], bool]) -> None:
        """Make named the primary of every zone; PromotionFailed names the step that failed."""
        try:
            # From here the supervisor's fence covers us: should the agent stall, writes stop.
            self.run.set_role(PRIMARY)
            self.state.role = PRIMARY
            for spec in self.catalog.specs():
                if spec.dynamic:
                    self._seed(spec.name)
                else:
                    anchor = self.catalog.zones[spec.name].source_serial
                    self._write_static(spec.name, self._published(pods, spec.name, anchor))
            self.was_primary.write_text(self.settings.identity + "\n")
            # Primary, but until every dynamic serial is lifted only this agent may update: a
            # client's update landing first would reuse a serial a forked secondary may hold.
            self.apply(self.view(PRIMARY, pods, None, writable=False))
            for spec in self.catalog.specs():
                if spec.dynamic:
                    self._lift_serial(spec.name, pods)
                else:
                    self.bind.reload(spec.name)
            self.state.must_refetch = self.state.refetch_asked = frozenset()
            if not still_leading():
                self.fence("leadership lapsed while promoting")
                return  # clients stay shut out; a renewal opens the zones in serve_as_primary
            self.apply(self.view(PRIMARY, pods, None))
        except (BindError, ConfigRejected, ZoneError, OSError) as error:
            raise PromotionFailed(str(error)) from error
        self.thaw_dynamic()

    def _published(self, pods: list[Peer], zone: str, anchor: int | None = None) -> list[int]:
        """Every plausible serial of zone that any pod published, and the one we serve.
        Published serials far from ours (or from anchor, when we serve none) are forged or
        broken: they are ignored (peers.plausible_serials), not lifted above."""
        serials = [
            peer.status.serials[zone]
            for peer in pods
            if peer.status is not None and zone in peer.status.serials
        ]
        own = self.bind.serial(zone)
        reference = own if own is not None else anchor
        if reference is not None:
            serials, ignored = peers.plausible_serials(serials, anchor=reference)
            if ignored:
                log.warning("%s: ignoring published serial(s) %s, far from %d", zone, ignored[:5], reference)
        return serials + ([own] if own is not None else [])

    def _write_static(self, zone: str, published: list[int]) -> None:
        """Write a static zone from its source, with a serial above any in `published`."""
        canonical = self.catalog.zones[zone]
        newest = peers.newest(published)
        serial = canonical.source_serial or 1
        if newest is not None and not peers.serial_newer(serial, newest):
            serial = peers.serial_add(newest, 1)
        zonefiles.write_raw(canonical, serial, self.zones_dir, self.settings.zone_limits)

    def _seed(self, zone: str) -> bool:
        """A dynamic zone's source seeds it once; afterwards its file and journal are the truth."""
        canonical = self.catalog.zones[zone]
        if (self.zones_dir / canonical.spec.file_name).exists():
            return False
        serial = canonical.source_serial or 1
        zonefiles.write_raw(canonical, serial, self.zones_dir, self.settings.zone_limits)
        return True

    def _lift_serial(self, zone: str, pods: list[Peer]) -> None:
        """Lift the serial far above anything any pod published, so a secondary that saw a
        forked history can never mistake ours for its own. The zone reloads as primary after
        `rndc reconfig`; it must answer before its SOA can be updated (signed with the
        pod-local key, the only one the promotion config lets update)."""
        deadline = self.clock.monotonic() + ZONE_LOAD_WAIT
        while self.bind.serial(zone) is None:
            if self.clock.monotonic() > deadline:
                raise BindError(f"{zone} did not load as primary within {ZONE_LOAD_WAIT:g}s")
            time.sleep(0.01)
        live = self.bind.serial(zone)
        if live is None:
            raise BindError(f"{zone} stopped answering while promoting")
        newest = peers.newest(self._published(pods, zone)) or live
        target = peers.serial_add(newest, self.settings.serial_margin)
        self.bind.set_serial(zone, target, self.keys.rndc)
        # BIND answers NOERROR to an update whose serial it ignores: read it back.
        problem = peers.lift_problem(zone, before=live, target=target, after=self.bind.serial(zone))
        if problem is not None:
            raise BindError(f"serial lift failed: {problem}")

    def serve_as_primary(self, pods: list[Peer], still_leading: Callable[[], bool]) -> None:
        """Steady state as primary: thaw after a fence once leadership is confirmed again, and
        keep also-notify in step with the peers' addresses."""
        if self.state.fenced and still_leading():
            self.thaw_dynamic()
            log.info("unfenced: the Lease was renewed")
        try:
            self.apply(self.view(PRIMARY, pods, None))
        except (BindError, ConfigRejected):
            return

    # ---- being a secondary --------------------------------------------------------------------

    def demote(self, pods: list[Peer], leader_ip: str | None) -> bool:
        """Stop being primary; False (still frozen, role unchanged) if named refused the config."""
        self.freeze_dynamic()
        self.state.must_refetch = self.dynamic_zones()
        self.state.refetch_asked = frozenset()
        self.state.applied_conf = None  # force the secondary rendering
        try:
            self.apply(self.view(SECONDARY, pods, leader_ip))
        except (BindError, ConfigRejected):
            return False
        self.run.set_role(SECONDARY)
        self.run.unsync()  # our data may hold a forked history until the new primary's arrives
        self.state.role = SECONDARY
        self.state.fenced = False
        self.metrics.set("bind_ha_fenced", 0)
        self.state.primary_address = None
        self.follow(pods, leader_ip)
        return True

    def follow(self, pods: list[Peer], leader_ip: str | None) -> None:
        try:
            changed = self.apply(self.view(SECONDARY, pods, leader_ip))
        except (BindError, ConfigRejected):
            return
        if changed or leader_ip != self.state.primary_address:
            self.state.primary_address = leader_ip
            if leader_ip:
                self._refresh_all()
        if leader_ip:
            self._refetch()

    def _refresh_all(self) -> None:
        """Changing primaries does not make BIND transfer: ask for a refresh of every zone."""
        for spec in self.catalog.specs():
            self._refresh(spec.name)

    def _refresh(self, zone: str) -> None:
        self.state.refresh_asked[zone] = self.clock.monotonic()
        try:
            self.bind.refresh(zone)
        except BindError as error:
            log.warning("refresh %s: %s", zone, error)

    def _refetch(self) -> None:
        """Ask BIND to replace every possibly forked dynamic zone with the primary's copy."""
        for zone in sorted(self.state.must_refetch - self.state.refetch_asked):
            try:
                self.bind.retransfer(zone)
            except BindError as error:
                log.warning("retransfer %s: %s", zone, error)
                continue
            self.state.refetch_asked |= {zone}

    # ---- fencing ------------------------------------------------------------------------------

    def freeze_dynamic(self) -> None:
        self.bind.each(self.bind.freeze, sorted(self.dynamic_zones()))

    def thaw_dynamic(self) -> None:
        self.bind.each(self.bind.thaw, sorted(self.dynamic_zones()))
        self.state.fenced = False
        self.metrics.set("bind_ha_fenced", 0)

    def fence(self, reason: str) -> None:
        """Leadership can no longer be confirmed: refuse writes until it is, or until demotion."""
        self.run.set_valid_until(0.0)
        self.freeze_dynamic()
        self.state.fenced = True
        self.metrics.set("bind_ha_fenced", 1)
        log.warning("fenced: %s", reason)

    # ---- zone sources ---------------------------------------------------------------------------

    def sync_sources(self) -> None:
        """Pick up edited, added and removed zones; the primary writes and reloads static ones."""
        change = self.catalog.refresh()
        for error in change.errors:
            self.metrics.inc("bind_ha_zone_source_failures_total")
            log.error("zone source rejected, previous data keeps serving: %s", error)
            self.events("ZoneRejected", error, True)
        for zone in list(self.catalog.zones) + list(self.catalog.failing):
            self.metrics.set("bind_ha_zone_source_valid", 0 if zone in self.catalog.failing else 1, zone=zone)
        for zone in change.removed:
            self.metrics.remove("bind_ha_zone_serial", zone=zone)
            self.metrics.remove("bind_ha_zone_source_valid", zone=zone)
        if self.state.role == PRIMARY:
            for zone in change.changed:
                self._apply_source(zone)

    def _apply_source(self, zone: str) -> None:
        """On the primary: new static text is written and reloaded; a new dynamic zone is seeded.
        (A dynamic zone's source only seeds it: afterwards its journal is the truth.)"""
        spec = self.catalog.zones[zone].spec
        try:
            if not spec.dynamic:
                served = self.bind.serial(zone)
                self._write_static(zone, [served] if served is not None else [])
                if zone in self.state.applied_zones:
                    self.bind.reload(zone)
            elif not self._seed(zone) and zone in self.state.applied_zones:
                log.info("dynamic zone %s: source changed after seeding; its journal stays the truth", zone)
        except (ZoneError, BindError, OSError) as error:
            self.metrics.inc("bind_ha_zone_source_failures_total")
            self.catalog.forget(zone)  # so the next look tries again
            log.error("zone %s not applied: %s", zone, error)

    # ---- status ---------------------------------------------------------------------------------

    def status(self) -> Status:
        """What this pod publishes: its serials, and healthy when named answers (the SOA
        queries double as the liveness check, keeping rndc out of every round)."""
        unhealthy = Status(healthy=False, serials=dict(self.state.last_serials))
        if self.run.stopping():
            return unhealthy
        specs = self.catalog.specs()
        if not specs:
            return Status(healthy=self.bind.alive(), serials={})
        answers = {}
        for spec in specs:
            answers[spec.name] = answer = self.bind.ask(spec.name)
            if not answer.answered:  # named is down: do not wait out a timeout per zone
                return unhealthy
        serials = {zone: answer.serial for zone, answer in answers.items() if answer.serial is not None}
        for zone, serial in serials.items():
            self.metrics.set("bind_ha_zone_serial", serial, zone=zone)
        self.state.last_serials = serials
        return Status(healthy=True, serials=serials)

    def live_status(self, address: str) -> Status | None:
        """A peer's serials, asked of its named directly; None when it does not answer (a crashed
        pod: one short timeout, not one per zone)."""
        serials = {}
        for spec in self.catalog.specs():
            answer = soa.ask(spec.name, address, self.settings.dns_port, 0.3)
            if not answer.answered:
                return None
            if answer.serial is not None:
                serials[spec.name] = answer.serial
        return Status(healthy=True, serials=serials) if self.catalog.specs() else None

    def update_synced(self, status: Status, primary_ip: str | None) -> None:
        """Mark zones whose served serial has caught up with the primary's (sticky until named
        restarts); the readiness probe keeps a pod on old data out of the Services until then.
        A secondary asks the primary itself (a published status lags a round), and asks named
        to refresh a zone that is behind, which a restarted named would otherwise not do for
        minutes. A primary (primary_ip None) is the reference."""
        zones = self.run.zones()
        if zones is None or (self.state.role == SECONDARY and primary_ip is None):
            return
        updated = [
            AppliedZone(zone.name, zone.dynamic, zone.synced or self._in_step(zone.name, status, primary_ip))
            for zone in zones
        ]
        if updated != zones:
            self.run.set_zones(updated)
        if not self.state.must_refetch and self.was_primary.exists() and self.state.role == SECONDARY:
            self.was_primary.unlink()

    def _in_step(self, zone: str, status: Status, primary_ip: str | None) -> bool:
        ours = status.serials.get(zone)
        if ours is None:
            return False
        if primary_ip is None:
            return True
        known = self.state.catch_up.get(zone)
        if known is None or known[0] != primary_ip:
            theirs = soa.ask(zone, primary_ip, self.settings.dns_port, 0.5).serial
            if theirs is not None:
                self.state.catch_up[zone] = (primary_ip, theirs)
        else:
            theirs = known[1]
        if theirs is None or peers.serial_newer(theirs, ours):
            if (
                self.clock.monotonic() - self.state.refresh_asked.get(zone, -REFRESH_INTERVAL)
                >= REFRESH_INTERVAL
            ):
                self._refresh(zone)
            return False
        if zone in self.state.must_refetch:
            if zone not in self.state.refetch_asked:
                return False  # equal by coincidence with a forked history: not until re-fetched
            self.state.must_refetch -= {zone}
            self.state.refetch_asked -= {zone}
        self.state.catch_up.pop(zone, None)
        return True

    # ---- handing over -----------------------------------------------------------------------------

    def await_replication(self, pods: list[Peer], timeout: float) -> None:
        """Before handing over, wait (bounded) until every healthy peer serves our last serial
        of every dynamic zone: the next primary then starts from every acknowledged update.
        A peer whose named does not answer at all (a crashed pod) is not waited for."""
        ours = {zone: self.bind.serial(zone) for zone in self.dynamic_zones()}
        targets = [
            peer.ip
            for peer in pods
            if peer.name != self.settings.pod_name
            and peer.ip
            and not peer.deleting
            and peer.status is not None
            and peer.status.healthy
        ]
        deadline = self.clock.monotonic() + timeout
        pending = [(ip, zone) for ip in targets for zone, serial in ours.items() if serial is not None]
        while pending:
            left = deadline - self.clock.monotonic()
            if left <= 0:
                log.warning("handing over although %d peer zone(s) lag: %s", len(pending), pending[:5])
                return
            still = []
            for ip, zone in pending:
                answer = soa.ask(zone, ip, self.settings.dns_port, min(0.2, left))
                if answer.answered and answer.serial != ours[zone]:
                    still.append((ip, zone))
            pending = still
            if pending:
                time.sleep(0.01)
