"""This pod's named in its role: config, promotion, demotion, fencing, zone data.

The agent decides *whether* this pod leads; LocalBind makes named match that
decision and keeps its data right across every change of role. Every change of
role is a staged switch (layout.py): the zones are loaded in their new role in a
second named view while the old view keeps answering, so clients never see a zone
missing (render.py explains why a plain reconfig would drop it).

- promote: dynamic zones are copied into the staging view (or seeded, only if they
  never held data: leasenotes.py), static zones written from their source with a
  serial above any pod's; once loaded, every dynamic serial is lifted far above
  anything published (no forks), and only then does the staged view answer;
- demote: writes are frozen at once; fresh copies of every zone are transferred
  from the new primary into the staging view (our history may have forked), and
  the pod switches to them once each reached the primary's serial;
- follow: a secondary re-points to the leader and asks for a refresh whenever the
  primary changes, because BIND does not transfer on a config change. A pod that
  was primary before it restarted re-fetches like a demoted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bind_ha import leasenotes, peers, soa, zonefiles
from bind_ha.bind import Bind, BindError, checkconf
from bind_ha.catalog import Catalog
from bind_ha.clock import Clock
from bind_ha.keys import Keys, private_write
from bind_ha.layout import Layout, abandon, flip, stage, views
from bind_ha.leasenotes import LeaseNotes
from bind_ha.metrics import Metrics
from bind_ha.peers import PRIMARY, SECONDARY, Peer, Status
from bind_ha.render import VIEWS, NamedView, render, view_for
from bind_ha.runstate import WAS_PRIMARY, AppliedZone, RunDir
from bind_ha.settings import Settings
from bind_ha.zonemodel import ZoneError
from bind_ha.zonestore import ZoneStore

log = logging.getLogger("bind_ha.roles")
Events = Callable[[str, str, bool], None]  # (reason, message, warning): a Kubernetes Event
REFRESH_INTERVAL = 5.0  # seconds between refreshes asked for a zone that is not in step yet
ZONE_LOAD_WAIT = 30.0  # seconds a staged zone may take to load before promotion fails
REFETCH_RETRY = 10.0  # seconds before a staged secondary zone still behind is transferred again
COPY_ATTEMPTS = 3  # copies of a zone tried when the serving copy moved on while staging


class ConfigRejected(Exception):
    """named-checkconf refused a rendering; the running config stays."""


class PromotionFailed(Exception):
    """named could not be made primary; the message says which step failed."""


class NoData(PromotionFailed):
    """A dynamic zone that held data is not on this pod: seeding it would lose that data."""


@dataclass
class BindState:
    layout: Layout
    fenced: bool = False  # dynamic zones are frozen for lack of a confirmed leadership
    applied_conf: str | None = None
    rejected_conf: str | None = None  # last rendering named-checkconf refused (reported once)
    applied_zones: frozenset[str] = frozenset()
    primary_address: str | None = None  # the leader a serving secondary follows
    # A staged secondary (demotion or re-fetch): the primary it transfers from, the serial of
    # each zone it must reach (the primary's when first asked), when it last asked for transfers.
    refetch_from: str | None = None
    refetch_targets: dict[str, int] = field(default_factory=dict)
    refetch_asked_at: float = 0.0
    refresh_asked: dict[str, float] = field(default_factory=dict)
    # A serving secondary not yet in step: the primary and the serial of it to reach per zone.
    catch_up: dict[str, tuple[str, int]] = field(default_factory=dict)
    last_serials: dict[str, int] = field(default_factory=dict)
    serving_problems: tuple[str, ...] = ()  # zones named does not answer with AA, as last asked

    @property
    def role(self) -> str:
        """The serving view's role: what clients see."""
        return self.layout.role


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
        self.store = ZoneStore(settings.data_dir)
        self.state = BindState(layout=self._recorded_layout())
        self.notes = LeaseNotes()  # as last read from the Lease (the agent keeps it current)
        self.was_primary = settings.data_dir / WAS_PRIMARY

    def _recorded_layout(self) -> Layout:
        """What named runs, as the last agent recorded it (named may have outlived that agent).
        Without a record (a new pod: init rendered the marked view as secondary), the marker
        says which view serves. With one, the record wins: the marker may already name a
        staged view that named never switched to (it is written first), and is put back."""
        recorded = self.run.layout()
        roles = (PRIMARY, SECONDARY)
        if recorded is None or recorded["serving"] not in VIEWS or recorded["role"] not in roles:
            return Layout(serving=self.store.serving(), role=self.run.role())
        serving = str(recorded["serving"])
        if self.store.serving() != serving:
            self.store.set_serving(serving)
        staged = recorded["staged"] if recorded["staged"] in roles else None
        return Layout(serving=serving, role=str(recorded["role"]), staged=staged)

    def dynamic_zones(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self.catalog.specs() if spec.dynamic)

    def served_zones(self) -> frozenset[str]:
        """Zones the serving view answers from data on disk (as last applied)."""
        serving = self.state.layout.serving
        return frozenset(
            spec.name
            for spec in self.catalog.specs()
            if spec.name in self.state.applied_zones and self.store.has_data(serving, spec.file_name)
        )

    def writable_zones(self) -> frozenset[str]:
        """Dynamic zones clients may update on a primary: those the Lease records as holding
        data, so that no election can ever seed one that took an update (leasenotes.py)."""
        return self.dynamic_zones() & self.notes.zones_with_data

    def missing_data(self) -> list[str]:
        """Dynamic zones that held data, that this pod has no copy of and may not seed."""
        serving = self.state.layout.serving
        return sorted(
            spec.name
            for spec in self.catalog.specs()
            if spec.dynamic
            and not self.store.has_data(serving, spec.file_name)
            and not leasenotes.may_seed(spec.name, self.notes)
        )

    # ---- named.conf ---------------------------------------------------------------------------

    def config(self, pods: list[Peer], leader: str | None, *, writable: frozenset[str]) -> NamedView:
        layout = self.state.layout
        return view_for(
            self.settings,
            self.keys,
            views=views(layout, leader=leader, writable=writable),
            zones=tuple(self.catalog.specs()),
            peers=peers.notify_targets(pods, self.settings.pod_name) if layout.role == PRIMARY else (),
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

    def _set_layout(self, layout: Layout) -> None:
        """Record a step of a switch; the role file tells the named supervisor to fence whenever
        any view is primary."""
        self.state.layout = layout
        self.run.set_layout(layout.serving, layout.role, layout.staged)
        self.run.set_role(PRIMARY if layout.primary_anywhere else SECONDARY)

    def _mark_all_synced(self) -> None:
        self.run.set_zones([AppliedZone(z.name, z.dynamic, True) for z in self.run.zones() or []])

    def _drop_staging(self, pods: list[Peer], leader: str | None, writable: frozenset[str]) -> None:
        """Abandon a switch: the staging view goes; the serving one is as it was."""
        if self.state.layout.staged is None:
            return
        self._set_layout(abandon(self.state.layout))
        self.store.set_serving(self.state.layout.serving)
        self.state.refetch_from = None
        self.state.refetch_targets = {}
        self.apply(self.config(pods, leader, writable=writable))

    def _switch(self, pods: list[Peer], leader: str | None, writable: frozenset[str]) -> None:
        """The staged view answers everybody from now on (recorded first: see zonestore.py), and
        the old view's files go."""
        old = self.state.layout.serving
        self.store.set_serving(self.state.layout.staging)
        self._set_layout(flip(self.state.layout))
        self.apply(self.config(pods, leader, writable=writable))
        try:
            self.store.empty(old)
        except OSError as error:
            log.warning("old zone files of view %s not removed: %s", old, error)

    # ---- becoming primary -----------------------------------------------------------------------

    def promote(
        self,
        pods: list[Peer],
        still_leading: Callable[[], bool],
        before_switch: Callable[[], None] = lambda: None,
    ) -> bool:
        """Make named the primary of every zone. True when done; False when leadership lapsed
        before clients could see the change (named is still a secondary, nothing to undo).
        PromotionFailed names the step that failed; named is then as it was. before_switch
        runs once the staged zones are ready, just before clients can see them (the agent
        records them on the Lease there, so they take updates at once)."""
        if self.state.layout.staged is not None:  # e.g. a demotion that had not finished
            self._drop_staging(pods, None, frozenset())
        serving = self.state.layout.serving
        try:
            # From here the supervisor's fence covers the staged zones too.
            self._set_layout(stage(self.state.layout, PRIMARY))
            staging = self.state.layout.staging
            self.store.empty(staging)
            self._stage_primary_data(pods, serving, staging)
            self.apply(self.config(pods, None, writable=frozenset()))
            for spec in self.catalog.specs():
                self._await_staged(spec.name)
                if spec.dynamic:
                    self._complete_copy(spec.name, spec.file_name, serving, staging)
                    self._lift_serial(spec.name, pods)
            if not still_leading():
                log.warning("promotion abandoned before the switch: leadership lapsed while staging")
                self._drop_staging(pods, None, frozenset())
                return False
            before_switch()
            # Clients may write from the switch on: should this pod restart, its data may hold
            # updates nobody else has, and it must re-fetch before serving as a secondary.
            self.was_primary.write_text(self.settings.identity + "\n")
            self._switch(pods, None, self.writable_zones())
            # The staging view sent no NOTIFY; a peer that followed us early transferred the
            # serials from before the lift: tell every peer about them now.
            for spec in self.catalog.specs():
                self._quietly(self.bind.notify, spec.name, self.state.layout.serving)
        except (BindError, ConfigRejected, ZoneError, OSError) as error:
            self._roll_back(pods)
            raise PromotionFailed(str(error)) from error
        except PromotionFailed:
            self._roll_back(pods)
            raise
        self.state.fenced = False
        self.metrics.set("bind_ha_fenced", 0)
        self.state.catch_up = {}
        self._mark_all_synced()  # a primary is the reference
        return True

    def _roll_back(self, pods: list[Peer]) -> None:
        try:
            self._drop_staging(pods, None, frozenset())
        except (BindError, ConfigRejected) as error:
            log.error("rolling back a failed promotion: %s", error)
            self._set_layout(abandon(self.state.layout))

    def _stage_primary_data(self, pods: list[Peer], serving: str, staging: str) -> None:
        for spec in self.catalog.specs():
            if not spec.dynamic:
                anchor = self.catalog.zones[spec.name].source_serial
                self._write_static(spec.name, self._published(pods, spec.name, anchor), staging)
            elif not self.store.copy(spec.file_name, serving, staging):
                self._seed(spec.name, staging)

    def _await_staged(self, zone: str) -> None:
        """Wait until the staging view answers for zone (only our key reaches it)."""
        deadline = self.clock.monotonic() + ZONE_LOAD_WAIT
        while self.bind.serial(zone, self.keys.rndc) is None:
            if self.clock.monotonic() > deadline:
                raise BindError(f"{zone} did not load in the staging view within {ZONE_LOAD_WAIT:g}s")
            time.sleep(0.01)

    def _complete_copy(self, zone: str, file_name: str, serving: str, staging: str) -> None:
        """The serving (secondary) copy may have taken a last transfer after we copied it: copy
        again until the staged zone is not behind what is served."""
        for _attempt in range(COPY_ATTEMPTS):
            served = self.bind.serial(zone)
            staged = self.bind.serial(zone, self.keys.rndc)
            if served is None or staged is None or not peers.serial_newer(served, staged):
                return
            log.info("%s: serving %d moved past the staged copy %d; copying again", zone, served, staged)
            self.bind.freeze(zone, staging)  # a dynamic zone is reloaded from disk only frozen
            self.store.copy(file_name, serving, staging)
            self.bind.thaw(zone, staging)
            deadline = self.clock.monotonic() + ZONE_LOAD_WAIT
            while self.bind.serial(zone, self.keys.rndc) == staged and self.clock.monotonic() < deadline:
                time.sleep(0.01)
        raise BindError(f"{zone}: the staged copy stays behind the served one")

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

    def _write_static(self, zone: str, published: list[int], view: str) -> None:
        """Write a static zone from its source into a view's directory, with a serial above any in
        `published`."""
        canonical = self.catalog.zones[zone]
        newest = peers.newest(published)
        serial = canonical.source_serial or 1
        if newest is not None and not peers.serial_newer(serial, newest):
            serial = peers.serial_add(newest, 1)
        zonefiles.write_raw(canonical, serial, self.store.directory(view), self.settings.zone_limits)

    def _seed(self, zone: str, view: str) -> None:
        """A dynamic zone's source seeds it, but only if it never held data (or an operator asked
        for a reseed): otherwise the seed would replace the records clients wrote."""
        if not leasenotes.may_seed(zone, self.notes):
            raise NoData(
                f"dynamic zone {zone} has held data (the Lease lists it in "
                f"{self.settings.label_prefix}/{leasenotes.ZONES_WITH_DATA}) and this pod has no copy: "
                f"not seeding it; waiting for a pod that has it, or for an operator's "
                f"{self.settings.label_prefix}/{leasenotes.RESEED} request"
            )
        canonical = self.catalog.zones[zone]
        serial = canonical.source_serial or 1
        zonefiles.write_raw(canonical, serial, self.store.directory(view), self.settings.zone_limits)
        log.info("dynamic zone %s seeded from its source", zone)

    def _lift_serial(self, zone: str, pods: list[Peer]) -> None:
        """Lift the staged serial far above anything any pod published, so a secondary that saw a
        forked history can never mistake ours for its own. Signed with the pod-local key, the
        update reaches the staging view, the only place it may update before the switch."""
        staged = self.bind.serial(zone, self.keys.rndc)
        if staged is None:
            raise BindError(f"{zone} stopped answering in the staging view while promoting")
        newest = peers.newest([*self._published(pods, zone), staged]) or staged
        target = peers.serial_add(newest, self.settings.serial_margin)
        self.bind.set_serial(zone, target, self.keys.rndc)
        # BIND answers NOERROR to an update whose serial it ignores: read it back.
        after = self.bind.serial(zone, self.keys.rndc)
        problem = peers.lift_problem(zone, before=staged, target=target, after=after)
        if problem is not None:
            raise BindError(f"serial lift failed: {problem}")

    def serve_as_primary(self, pods: list[Peer], still_leading: Callable[[], bool]) -> None:
        """Steady state as primary: thaw after a fence once leadership is confirmed again, keep
        also-notify in step with the peers' addresses, open newly recorded zones to clients."""
        if self.state.fenced and still_leading():
            try:
                self.thaw_all()
                log.info("unfenced: the Lease was renewed")
            except BindError as error:
                log.warning("thaw after renewal: %s", error)
        try:
            self.apply(self.config(pods, None, writable=self.writable_zones()))
        except (BindError, ConfigRejected):
            return

    # ---- being a secondary --------------------------------------------------------------------

    def demote(self, pods: list[Peer], leader_ip: str | None) -> bool:
        """Stop being primary. Writes stop at once (frozen); named switches to fresh copies of
        every zone once they reached the new primary's serials. True once it has."""
        if not self.state.fenced:
            self.fence("another pod leads")
        elif self.state.layout.staged is None:
            self._freeze_quietly()
        try:
            self._drop_leftover_promotion(pods, leader_ip)
            if self.state.layout.staged is None:
                self._begin_refetch()
            return self._advance_refetch(pods, leader_ip)
        except (BindError, ConfigRejected, OSError) as error:
            log.warning("demotion: %s", error)
            return False

    def follow(self, pods: list[Peer], leader_ip: str | None) -> None:
        """A secondary's round: follow the leader. If this pod was primary before it restarted,
        its data may hold updates nobody else has: it re-fetches like a demoted pod."""
        try:
            self._drop_leftover_promotion(pods, leader_ip)
            if self.state.layout.staged is None and self.was_primary.exists() and leader_ip:
                self._begin_refetch()
            if self.state.layout.staged is not None:
                if self._advance_refetch(pods, leader_ip):
                    log.info("re-fetched every zone from the primary at %s", leader_ip)
                return
            changed = self.apply(self.config(pods, leader_ip, writable=frozenset()))
        except (BindError, ConfigRejected, OSError) as error:
            log.warning("follow %s: %s", leader_ip, error)
            return
        if changed or leader_ip != self.state.primary_address:
            self.state.primary_address = leader_ip
            self.state.catch_up = {}
            if leader_ip:
                self._refresh_all()

    def _drop_leftover_promotion(self, pods: list[Peer], leader_ip: str | None) -> None:
        """Only promote() stages a primary, and it finishes or abandons within its call: a staged
        primary seen here was left by an agent that stopped mid-promotion."""
        if self.state.layout.staged == PRIMARY:
            log.info("dropping the staged primary view a previous agent left")
            self._drop_staging(pods, leader_ip, frozenset())

    def _begin_refetch(self) -> None:
        """Stage a secondary view that starts empty: every zone comes whole from the primary."""
        self.store.empty(self.state.layout.staging)
        self._set_layout(stage(self.state.layout, SECONDARY))
        self.state.refetch_from = None
        self.state.refetch_targets = {}
        self.state.refetch_asked_at = self.clock.monotonic()
        self.run.unsync()  # what we serve meanwhile may hold a forked history
        log.info("re-fetching every zone from the primary into view %s", self.state.layout.staging)

    def _advance_refetch(self, pods: list[Peer], leader_ip: str | None) -> bool:
        """One look at a staged secondary; switch to it once every zone reached its target."""
        self.apply(self.config(pods, leader_ip, writable=frozenset()))
        if leader_ip is None:
            return False
        if leader_ip != self.state.refetch_from:  # a new primary: its serials are the targets
            self.state.refetch_from = leader_ip
            self.state.refetch_targets = {}
        pending = [spec.name for spec in self.catalog.specs() if not self._refetched(spec.name, leader_ip)]
        if pending:
            now = self.clock.monotonic()
            if now - self.state.refetch_asked_at >= REFETCH_RETRY:
                self.state.refetch_asked_at = now
                log.info("transferring again from %s, still behind: %s", leader_ip, ", ".join(pending[:5]))
                for zone in pending:
                    self._quietly(self.bind.retransfer, zone, self.state.layout.staging)
            return False
        self._switch(pods, leader_ip, frozenset())
        self.state.fenced = False
        self.metrics.set("bind_ha_fenced", 0)
        self.state.primary_address = leader_ip
        self.state.catch_up = {}
        self._mark_all_synced()  # every zone has just reached a serial the primary had
        self.was_primary.unlink(missing_ok=True)
        return True

    def _refetched(self, zone: str, leader_ip: str) -> bool:
        """The staged copy of zone finished a transfer at a serial at least the primary's."""
        target = self.state.refetch_targets.get(zone)
        if target is None:
            theirs = soa.ask(zone, leader_ip, self.settings.dns_port, 0.5).serial
            if theirs is None:
                return False
            target = self.state.refetch_targets[zone] = theirs
        staged = self.bind.serial(zone, self.keys.rndc)
        return staged is not None and not peers.serial_newer(target, staged)

    def _refresh_all(self) -> None:
        """Changing primaries does not make BIND transfer: ask for a refresh of every zone."""
        for spec in self.catalog.specs():
            self._refresh(spec.name)

    def _refresh(self, zone: str) -> None:
        self.state.refresh_asked[zone] = self.clock.monotonic()
        self._quietly(self.bind.refresh, zone, self.state.layout.serving)

    @staticmethod
    def _quietly(command: Callable[[str, str], None], zone: str, view: str) -> None:
        try:
            command(zone, view)
        except BindError as error:
            log.warning("%s", error)

    # ---- fencing ------------------------------------------------------------------------------

    def thaw_all(self) -> None:
        self.bind.thaw_all()
        self.state.fenced = False
        self.metrics.set("bind_ha_fenced", 0)

    def _freeze_quietly(self) -> None:
        try:
            self.bind.freeze_all()
        except BindError as error:  # e.g. named hung: the supervisor keeps trying
            log.warning("freeze: %s", error)

    def fence(self, reason: str) -> None:
        """Leadership can no longer be confirmed: refuse writes until it is, or until demotion."""
        self.run.set_valid_until(0.0)
        self._freeze_quietly()
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
        if self.state.role == PRIMARY and self.state.layout.staged is None:
            for zone in change.changed:
                self._apply_source(zone)

    def _apply_source(self, zone: str) -> None:
        """On the primary: new static text is written and reloaded; a new dynamic zone is seeded.
        (A dynamic zone's source only seeds it: afterwards its journal is the truth.)"""
        spec = self.catalog.zones[zone].spec
        serving = self.state.layout.serving
        try:
            if not spec.dynamic:
                served = self.bind.serial(zone)
                self._write_static(zone, [served] if served is not None else [], serving)
                if zone in self.state.applied_zones:
                    self.bind.reload(zone, serving)
            elif not self.store.has_data(serving, spec.file_name):
                self._seed(zone, serving)
            elif zone in self.state.applied_zones:
                log.info("dynamic zone %s: source changed after seeding; its journal stays the truth", zone)
        except NoData as error:
            log.error("%s", error)
            self.events("SeedRefused", str(error), True)
        except (ZoneError, BindError, OSError) as error:
            self.metrics.inc("bind_ha_zone_source_failures_total")
            self.catalog.forget(zone)  # so the next look tries again
            log.error("zone %s not applied: %s", zone, error)

    # ---- status ---------------------------------------------------------------------------------

    def status(self) -> Status:
        """What this pod publishes: its serials, and healthy when named answers (the SOA
        queries double as the liveness check, keeping rndc out of every round). Records which
        zones named does not answer with AA (serving_problems)."""
        unhealthy = Status(healthy=False, serials=dict(self.state.last_serials))
        if self.run.stopping():
            return unhealthy
        specs = self.catalog.specs()
        if not specs:
            alive = self.bind.alive()
            self.state.serving_problems = () if alive else ("named does not answer its control channel",)
            return Status(healthy=alive, serials={})
        serials, problems = {}, []
        for spec in specs:
            answer = self.bind.ask(spec.name)
            if not answer.answered:  # named is down: do not wait out a timeout per zone
                self.state.serving_problems = (answer.problem or f"{spec.name}: no answer",)
                return unhealthy
            if answer.serial is not None:
                serials[spec.name] = answer.serial
            if answer.problem is not None:
                problems.append(answer.problem)
        for zone, serial in serials.items():
            self.metrics.set("bind_ha_zone_serial", serial, zone=zone)
        self.state.serving_problems = tuple(problems)
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
        """Mark zones whose served serial has caught up with the primary (sticky until named
        restarts); the readiness probe keeps a pod on old data out of the Services until then.
        "Caught up" means: reached the serial the primary had when we first asked it, so a
        steady stream of updates cannot keep a restarted pod unready. A secondary also asks
        named to refresh a zone that is behind, which a restarted named would otherwise not
        do for minutes. A primary (primary_ip None) is the reference. During a switch the
        switch itself marks the zones (after its copies reached the primary's serials)."""
        zones = self.run.zones()
        if zones is None or self.state.layout.staged is not None:
            return
        if self.state.role == SECONDARY and primary_ip is None:
            return
        updated = [
            AppliedZone(
                zone.name, zone.dynamic, zone.synced or self._caught_up(zone.name, status, primary_ip)
            )
            for zone in zones
        ]
        if updated != zones:
            self.run.set_zones(updated)

    def _caught_up(self, zone: str, status: Status, primary_ip: str | None) -> bool:
        ours = status.serials.get(zone)
        if primary_ip is None or ours is None:
            return ours is not None
        known = self.state.catch_up.get(zone)
        if known is None or known[0] != primary_ip:
            theirs = soa.ask(zone, primary_ip, self.settings.dns_port, 0.5).serial
            if theirs is None:
                return False
            known = self.state.catch_up[zone] = (primary_ip, theirs)
        if not peers.serial_newer(known[1], ours):
            del self.state.catch_up[zone]
            return True
        if self.clock.monotonic() - self.state.refresh_asked.get(zone, -REFRESH_INTERVAL) >= REFRESH_INTERVAL:
            self._refresh(zone)
        return False

    # ---- handing over -----------------------------------------------------------------------------

    def await_replication(self, pods: list[Peer], timeout: float) -> bool:
        """Before handing over, wait (at most timeout) until one peer serves our last serial of
        every dynamic zone: the candidates defer to the most current pod, so the next primary
        then starts from every acknowledged update. Every peer counts, even one whose named
        does not answer right now (it may be busy with a full transfer). True when one is in
        step."""
        ours = {
            zone: serial for zone in self.dynamic_zones() if (serial := self.bind.serial(zone)) is not None
        }
        if not ours:
            return True
        targets = sorted(
            peer.ip for peer in pods if peer.name != self.settings.pod_name and peer.ip and not peer.deleting
        )
        deadline = self.clock.monotonic() + timeout
        while targets:
            for ip in targets:
                if self._in_step_with(ip, ours, deadline):
                    log.info("handing over: %s serves our last serials", ip)
                    return True
            if self.clock.monotonic() >= deadline:
                break
            time.sleep(0.05)
        return False

    def _in_step_with(self, ip: str, ours: dict[str, int], deadline: float) -> bool:
        for zone, serial in ours.items():
            left = deadline - self.clock.monotonic()
            answer = soa.ask(zone, ip, self.settings.dns_port, max(0.05, min(0.2, left)))
            if answer.serial is None or peers.serial_newer(serial, answer.serial):
                return False
        return True
