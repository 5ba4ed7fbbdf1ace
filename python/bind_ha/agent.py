"""The agent: one election round every retry period, and BIND kept in step.

Each round reads the Lease and the release's pods, decides one Lease write
(election.plan), and then reconciles: the local named's role and config, the
role labels, the published status, the fence mark. The round is summarised in
one log line whenever the decision differs from the previous round's.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bind_ha import election, peers, soa, zonefiles
from bind_ha.bind import Bind, BindError, checkconf
from bind_ha.catalog import Catalog
from bind_ha.clock import Clock
from bind_ha.election import Leadership, Observation
from bind_ha.keys import Keys, private_write
from bind_ha.kube import ApiUnavailable, Conflict, Kube, micro_time
from bind_ha.metrics import Metrics
from bind_ha.peers import PRIMARY, SECONDARY, Peer, Status
from bind_ha.render import NamedView, render, view_for
from bind_ha.runstate import WAS_PRIMARY, AppliedZone, RunDir
from bind_ha.settings import Settings
from bind_ha.zonemodel import ZoneError

log = logging.getLogger("bind_ha.agent")
CONFIRM_AFTER = 0.25  # seconds after a heartbeat by when the announced Lease write has landed


class ConfigRejected(Exception):
    """named-checkconf refused a rendering; the running config stays."""


@dataclass
class AgentState:
    observation: Observation | None = None
    leadership: Leadership = field(default_factory=Leadership)
    acquirable_since: float | None = None
    role: str = SECONDARY  # what named is configured as
    fenced: bool = False  # primary whose dynamic zones are frozen
    released: bool = False  # gave the Lease up for good (named stopping / SIGTERM)
    applied_conf: str | None = None
    primary_address: str | None = None
    retransfer_pending: frozenset[str] = frozenset()
    published: Status | None = None
    pods: list[Peer] = field(default_factory=list)  # as of the last round
    ready: bool = False
    last_round_at: float | None = None
    last_summary: str = ""
    confirm_at: float | None = None  # a re-read of the Lease announced by a leader's heartbeat


def declare_metrics(metrics: Metrics) -> None:
    for name, kind, text in (
        ("bind_ha_is_leader", "gauge", "1 while this pod holds the Lease and its BIND is primary"),
        (
            "bind_ha_fenced",
            "gauge",
            "1 while this pod's dynamic zones are frozen for lack of a renewed Lease",
        ),
        ("bind_ha_leader_transitions_total", "counter", "times this agent became leader"),
        ("bind_ha_lease_transitions", "gauge", "leaseTransitions of the Lease as last read"),
        ("bind_ha_reconfigurations_total", "counter", "named.conf renderings applied with rndc reconfig"),
        (
            "bind_ha_reconfiguration_failures_total",
            "counter",
            "renderings refused by named-checkconf or rndc",
        ),
        ("bind_ha_zone_serial", "gauge", "SOA serial this pod serves, per zone"),
        (
            "bind_ha_zone_source_valid",
            "gauge",
            "0 while a zone's current source is rejected (old data serves)",
        ),
        ("bind_ha_zone_source_failures_total", "counter", "zone sources rejected by validation"),
        ("bind_ha_api_requests_total", "counter", "Kubernetes API requests made by this agent"),
        ("bind_ha_api_errors_total", "counter", "Kubernetes API requests that failed or timed out"),
        ("bind_ha_rounds_total", "counter", "election rounds run"),
    ):
        metrics.declare(name, kind, text)


class Agent:
    def __init__(
        self,
        *,
        settings: Settings,
        kube: Kube,
        bind: Bind,
        catalog: Catalog,
        clock: Clock,
        metrics: Metrics,
        keys: Keys,
        run: RunDir,
        cached_peers: Callable[[], list[Peer] | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.timing = settings.timing
        self.kube = kube
        self.bind = bind
        self.catalog = catalog
        self.clock = clock
        self.metrics = metrics
        self.keys = keys
        self.run = run
        self.cached_peers = cached_peers  # the pod informer, when it is in sync
        self.state = AgentState(role=run.role())
        self.wake = threading.Event()
        declare_metrics(metrics)
        metrics.declare(
            "bind_ha_seconds_since_last_renew",
            "gauge",
            "seconds since this agent last renewed the Lease (-1: never)",
            self._since_renew,
        )
        if (settings.data_dir / WAS_PRIMARY).exists():
            # This pod was primary before a restart: its dynamic zones may hold
            # updates nobody else has. Once it follows someone, it re-fetches them.
            self.state.retransfer_pending = frozenset(z.name for z in catalog.specs() if z.dynamic)

    # ---- the round -------------------------------------------------------------------------

    def round(self) -> str:
        """One election round; returns its one-line summary."""
        now = self.clock.monotonic()
        self.metrics.inc("bind_ha_rounds_total")
        self._sync_catalog()
        self._check_deadline()
        if self.run.stopping() and not self.state.released:
            self.release("named is stopping")
        try:
            summary = self._elect_and_reconcile(now)
        except ApiUnavailable as error:
            self.metrics.inc("bind_ha_api_errors_total")
            summary = f"API unavailable: {error}"
        self._check_deadline()
        self.state.last_round_at = self.clock.monotonic()
        self.metrics.set("bind_ha_api_requests_total", self.kube.requests)
        return summary

    def _check_deadline(self) -> None:
        """A leader past its renew deadline fences at once, even if its last request is still out."""
        now = self.clock.monotonic()
        if (
            self.state.role == PRIMARY
            and not self.state.fenced
            and self.state.leadership.expired(now, self.timing)
        ):
            self._fence("renew deadline passed without a successful renewal")

    def _elect_and_reconcile(self, now: float) -> str:
        timeout = election.request_timeout(self.state.leadership, now, self.timing)
        record, version = self.kube.read_lease(timeout)
        self.state.observation = election.observe(self.state.observation, record, version, now)
        if self.state.observation.changed_at == now:
            log.debug(
                "Lease changed: version %s, holder %s, renewed %s",
                version,
                record.holder if record else None,
                record.renew_time if record else None,
            )
        pods = self.cached_peers()
        if pods is None:
            pods = self.kube.list_peers(timeout)
        status = self._own_status()
        summary = self._lease_round(pods, status)
        leading = self._leading()
        self.metrics.set("bind_ha_is_leader", 1 if leading and self.state.role == PRIMARY else 0)
        if record is not None:
            self.metrics.set("bind_ha_lease_transitions", record.transitions)
        self._reconcile_bind(leading, pods)
        self._fix_labels(pods, leading)
        after = self._own_status()
        self._publish(after)
        self._update_synced(pods, after)
        self.state.pods = pods
        self.state.ready = True
        return summary

    def _leading(self) -> bool:
        now = self.clock.monotonic()
        return (
            not self.state.released
            and self.state.leadership.leading(now, self.timing)
            and election.holder(self.state.observation) == self.settings.identity
        )

    def _lease_round(self, pods: list[Peer], status: Status) -> str:
        """Plan and attempt this round's single Lease write."""
        observation = self.state.observation
        assert observation is not None
        now = self.clock.monotonic()
        me = self.settings.identity
        if election.holder(observation) != me:
            self.state.leadership = Leadership()  # whatever we believed, the Lease says otherwise
        if election.held_by_other(observation, me, now, self.timing):
            self.state.acquirable_since = None
        elif self.state.acquirable_since is None:
            self.state.acquirable_since = now
        if self.state.released:
            return "released: not a candidate"
        reason = peers.defer_reason(
            status,
            pods,
            self.settings.pod_name,
            acquirable_for=now - (self.state.acquirable_since or now),
            lease_duration=self.timing.lease_duration,
        )
        action = election.plan(
            observation,
            identity=me,
            now=now,
            wall_now=self.clock.wall(),
            timing=self.timing,
            defer_reason=reason,
        )
        if isinstance(action, election.Wait):
            return f"follower: {action.reason}"
        return self._write_lease(
            action, renewing=observation.record is not None and observation.record.holder == me
        )

    def _write_lease(self, action: election.Create | election.Update, *, renewing: bool) -> str:
        self._heartbeat(action.record)
        started = self.clock.monotonic()
        timeout = election.request_timeout(self.state.leadership, started, self.timing)
        try:
            if isinstance(action, election.Create):
                version = self.kube.create_lease(action.record, timeout)
            else:
                version = self.kube.replace_lease(action.record, action.version, timeout)
        except Conflict:
            return "lost a Lease race (409): re-reading next round"
        except ApiUnavailable as error:
            self.metrics.inc("bind_ha_api_errors_total")
            return f"Lease write failed: {error}"
        self.state.leadership = Leadership(renewed_at=started)
        self.state.observation = Observation(action.record, version, changed_at=started)
        if renewing:
            return "leader: renewed"
        self.metrics.inc("bind_ha_leader_transitions_total")
        return f"leader: acquired the Lease (transition {action.record.transitions})"

    def _heartbeat(self, record: election.LeaseRecord) -> None:
        """Announce the Lease write we are about to make on our pod. Followers' pod watches see
        it within milliseconds and read the Lease again CONFIRM_AFTER later, so they judge expiry
        from (almost) the real renewal time rather than from their next poll. It goes first:
        a crash between the two writes then leaves no renewal unannounced."""
        if record.renew_time is None:
            return
        try:
            self.kube.heartbeat(
                micro_time(record.renew_time),
                election.request_timeout(self.state.leadership, self.clock.monotonic(), self.timing),
            )
        except (ApiUnavailable, Conflict) as error:
            log.debug("heartbeat: %s", error)

    # ---- BIND ------------------------------------------------------------------------------

    def _reconcile_bind(self, leading: bool, pods: list[Peer]) -> None:
        if leading:
            self.run.set_valid_until(self.state.leadership.valid_until(self.timing))
            if self.state.role != PRIMARY:
                self._promote(pods)
            else:
                self._steady_primary(pods)
            return
        self.run.set_valid_until(0.0)
        leader_ip = peers.leader_address(pods, election.holder(self.state.observation))
        if self.state.role == PRIMARY:
            self._demote(pods, leader_ip)
        else:
            self._steady_secondary(pods, leader_ip)

    def _view(self, role: str, pods: list[Peer], primary_address: str | None) -> NamedView:
        return view_for(
            self.settings,
            self.keys,
            role=role,
            zones=tuple(self.catalog.specs()),
            primary_address=primary_address,
            peers=peers.notify_targets(pods, self.settings.pod_name),
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
            self._config_failure(f"rendered named.conf rejected by named-checkconf: {problem}")
            raise ConfigRejected(problem)
        candidate.replace(self.run.named_conf)
        try:
            self.bind.reconfig()
        except BindError as error:
            self._config_failure(str(error))
            raise
        self.state.applied_conf = text
        synced = {zone.name for zone in self.run.zones() or [] if zone.synced}
        self.run.set_zones([AppliedZone(z.name, z.dynamic, z.name in synced) for z in view.zones])
        self.metrics.inc("bind_ha_reconfigurations_total")
        return True

    def _config_failure(self, message: str) -> None:
        self.metrics.inc("bind_ha_reconfiguration_failures_total")
        log.error("%s", message)
        self.kube.event("ReconfigureFailed", message, warning=True)

    def _published_serials(self, pods: list[Peer], zone: str) -> list[int]:
        serials = [
            peer.status.serials[zone]
            for peer in pods
            if peer.status is not None and zone in peer.status.serials
        ]
        own = self.bind.serial(zone)
        return serials + ([own] if own is not None else [])

    def _write_static(self, zone: str, pods: list[Peer]) -> None:
        """Write a static zone from its source, with a serial above any served anywhere."""
        canonical = self.catalog.zones[zone]
        newest = peers.newest(self._published_serials(pods, zone))
        serial = canonical.source_serial or 1
        if newest is not None and not peers.serial_newer(serial, newest):
            serial = peers.serial_add(newest, 1)
        zonefiles.write_raw(canonical, serial, self.settings.data_dir / "zones")

    def _seed_dynamic(self, zone: str) -> bool:
        """A dynamic zone's source seeds it once; afterwards its file and journal are the truth."""
        if (self.settings.data_dir / "zones" / self.catalog.zones[zone].spec.file_name).exists():
            return False
        canonical = self.catalog.zones[zone]
        zonefiles.write_raw(canonical, canonical.source_serial or 1, self.settings.data_dir / "zones")
        return True

    def _promote(self, pods: list[Peer]) -> None:
        """Become primary: relabel others, promote BIND, then label self (in that order)."""
        for fix in peers.label_fixes(pods, self.settings.pod_name, leading=True):
            if fix.pod != self.settings.pod_name:
                self._label(fix.pod, fix.role)
        try:
            self._promote_bind(pods)
        except (BindError, ConfigRejected, ZoneError, OSError) as error:
            log.error("promotion failed: %s; giving the Lease up", error)
            self.kube.event("PromotionFailed", str(error), warning=True)
            self._freeze_dynamic()
            self._give_up_lease()
            return
        self._label(self.settings.pod_name, PRIMARY)
        self.kube.event("Promoted", f"{self.settings.pod_name} is now the primary of every zone")
        log.info("promoted: %s is primary", self.settings.pod_name)

    def _promote_bind(self, pods: list[Peer]) -> None:
        specs = self.catalog.specs()
        for spec in specs:
            if not spec.dynamic:
                self._write_static(spec.name, pods)
            else:
                self._seed_dynamic(spec.name)
        (self.settings.data_dir / WAS_PRIMARY).write_text(self.settings.identity + "\n")
        self.apply(self._view(PRIMARY, pods, None))
        self.run.set_role(PRIMARY)
        self.state.role = PRIMARY
        for spec in specs:
            if not spec.dynamic:
                self.bind.reload(spec.name)
                continue
            # Lift the serial above anything any pod published, so a secondary
            # that saw a forked history can never mistake ours for its own.
            newest = peers.newest(self._published_serials(pods, spec.name))
            if newest is not None:
                self.bind.set_serial(
                    spec.name, peers.serial_add(newest, self.settings.serial_margin), self.keys.update
                )
        self._thaw_dynamic()
        self.state.retransfer_pending = frozenset()

    def _steady_primary(self, pods: list[Peer]) -> None:
        if self.state.fenced:
            self._thaw_dynamic()
            log.info("unfenced: the Lease was renewed")
        try:
            self.apply(self._view(PRIMARY, pods, None))  # also-notify follows the peers' IPs
        except (BindError, ConfigRejected):
            return

    def _demote(self, pods: list[Peer], leader_ip: str | None) -> None:
        """Stop being primary: no more writes, discard possibly forked dynamic history."""
        self._freeze_dynamic()
        self.run.set_role(SECONDARY)
        self.run.unsync()  # our data may hold a forked history until the new primary's arrives
        self.state.role = SECONDARY
        self.state.fenced = False
        self.metrics.set("bind_ha_fenced", 0)
        self.state.retransfer_pending = frozenset(z.name for z in self.catalog.specs() if z.dynamic)
        self.state.applied_conf = None  # force the secondary rendering and a refresh
        self._steady_secondary(pods, leader_ip)
        self._label(self.settings.pod_name, SECONDARY)
        self.kube.event("Demoted", f"{self.settings.pod_name} is a secondary again")
        log.info("demoted: following %s", leader_ip or "nobody yet")

    def _steady_secondary(self, pods: list[Peer], leader_ip: str | None) -> None:
        try:
            changed = self.apply(self._view(SECONDARY, pods, leader_ip))
        except (BindError, ConfigRejected):
            return
        if changed or leader_ip != self.state.primary_address:
            self.state.primary_address = leader_ip
            if leader_ip:
                self._refresh_all()
        if leader_ip and self.state.retransfer_pending:
            self._retransfer_pending()

    def _refresh_all(self) -> None:
        """Changing primaries does not make BIND transfer: ask for a refresh of every zone."""
        for spec in self.catalog.specs():
            try:
                self.bind.refresh(spec.name)
            except BindError as error:
                log.warning("refresh %s: %s", spec.name, error)

    def _retransfer_pending(self) -> None:
        for zone in sorted(self.state.retransfer_pending):
            try:
                self.bind.retransfer(zone)
            except BindError as error:
                log.warning("retransfer %s: %s", zone, error)
                return
        self.state.retransfer_pending = frozenset()
        (self.settings.data_dir / WAS_PRIMARY).unlink(missing_ok=True)

    def _freeze_dynamic(self) -> None:
        for spec in self.catalog.specs():
            if spec.dynamic:
                try:
                    self.bind.freeze(spec.name)
                except BindError as error:
                    log.error("freeze %s: %s", spec.name, error)

    def _thaw_dynamic(self) -> None:
        for spec in self.catalog.specs():
            if spec.dynamic:
                try:
                    self.bind.thaw(spec.name)
                except BindError as error:
                    log.error("thaw %s: %s", spec.name, error)
        self.state.fenced = False
        self.metrics.set("bind_ha_fenced", 0)

    def _fence(self, reason: str) -> None:
        """Our leadership can no longer be confirmed: refuse writes until it is, or until demotion."""
        self.run.set_valid_until(0.0)
        self._freeze_dynamic()
        self.state.fenced = True
        self.metrics.set("bind_ha_fenced", 1)
        log.warning("fenced: %s", reason)

    # ---- zones, labels, status ---------------------------------------------------------------

    def _sync_catalog(self) -> None:
        change = self.catalog.refresh()
        for error in change.errors:
            self.metrics.inc("bind_ha_zone_source_failures_total")
            log.error("zone source rejected, previous data keeps serving: %s", error)
            self.kube.event("ZoneRejected", error, warning=True)
        for zone in list(self.catalog.zones) + list(self.catalog.failing):
            self.metrics.set("bind_ha_zone_source_valid", 0 if zone in self.catalog.failing else 1, zone=zone)
        for zone in change.removed:
            self.metrics.remove("bind_ha_zone_serial", zone=zone)
            self.metrics.remove("bind_ha_zone_source_valid", zone=zone)
        if self.state.role == PRIMARY and change.changed:
            self._apply_source_changes(change.changed)

    def _apply_source_changes(self, zones: tuple[str, ...]) -> None:
        """On the primary: new static text is written and reloaded; new zones are added."""
        pods: list[Peer] = []  # serial floor from our own served serial is enough here
        for zone in zones:
            spec = self.catalog.zones[zone].spec
            known = self.state.applied_conf is not None and f'zone "{zone}"' in self.state.applied_conf
            try:
                if not spec.dynamic:
                    self._write_static(zone, pods)
                    if known:
                        self.bind.reload(zone)
                elif not self._seed_dynamic(zone) and known:
                    log.info(
                        "dynamic zone %s: source changed after seeding; its journal stays the truth", zone
                    )
            except (ZoneError, BindError, OSError) as error:
                self.metrics.inc("bind_ha_zone_source_failures_total")
                log.error("zone %s not applied: %s", zone, error)

    def _label(self, pod: str, role: str) -> None:
        try:
            self.kube.set_role(
                pod,
                role,
                election.request_timeout(self.state.leadership, self.clock.monotonic(), self.timing),
            )
        except (ApiUnavailable, Conflict) as error:
            log.warning("label %s=%s: %s", pod, role, error)

    def _fix_labels(self, pods: list[Peer], leading: bool) -> None:
        for fix in peers.label_fixes(pods, self.settings.pod_name, leading and self.state.role == PRIMARY):
            self._label(fix.pod, fix.role)

    def _own_status(self) -> Status:
        if self.run.stopping() or not self.bind.alive():
            return Status(
                healthy=False, serials=dict(self.state.published.serials) if self.state.published else {}
            )
        serials = {}
        for spec in self.catalog.specs():
            serial = self.bind.serial(spec.name)
            if serial is not None:
                serials[spec.name] = serial
                self.metrics.set("bind_ha_zone_serial", serial, zone=spec.name)
        return Status(healthy=True, serials=serials)

    def _update_synced(self, pods: list[Peer], status: Status) -> None:
        """Mark zones whose served serial has caught up with the primary's (sticky until named
        restarts); the readiness probe keeps a pod on old data out of the Services until then.
        A secondary asks the primary itself (not its published status, which lags a round)."""
        zones = self.run.zones()
        if zones is None or all(zone.synced for zone in zones):
            return
        primary_ip = None
        if self.state.role != PRIMARY:
            primary_ip = peers.leader_address(pods, election.holder(self.state.observation))
            if primary_ip is None:
                return
        updated = []
        for zone in zones:
            ours = status.serials.get(zone.name)
            caught_up = zone.synced or (ours is not None and self._in_step(zone.name, ours, primary_ip))
            updated.append(AppliedZone(zone.name, zone.dynamic, caught_up))
        if updated != zones:
            self.run.set_zones(updated)

    def _in_step(self, zone: str, ours: int, primary_ip: str | None) -> bool:
        if primary_ip is None:  # we are the primary: our data is the reference
            return True
        theirs = soa.ask(zone, primary_ip, self.settings.dns_port, 0.5).serial
        return theirs is not None and not peers.serial_newer(theirs, ours)

    def _publish(self, status: Status) -> None:
        if status == self.state.published:
            return
        try:
            self.kube.publish_status(status, self.timing.request_timeout)
            self.state.published = status
        except (ApiUnavailable, Conflict) as error:
            log.warning("publish status: %s", error)

    # ---- leaving -----------------------------------------------------------------------------

    def _give_up_lease(self) -> None:
        """Write an empty holder (retrying on 409) so the next candidate takes over at once."""
        for _attempt in range(3):
            try:
                record, version = self.kube.read_lease(self.timing.request_timeout)
                observation = election.observe(
                    self.state.observation, record, version, self.clock.monotonic()
                )
                self.state.observation = observation
                release = election.plan_release(
                    observation, identity=self.settings.identity, wall_now=self.clock.wall()
                )
                if release is None:
                    break
                version = self.kube.replace_lease(
                    release.record, release.version, self.timing.request_timeout
                )
                self.state.observation = replace(observation, record=release.record, version=version)
                break
            except Conflict:
                continue
            except ApiUnavailable as error:
                log.warning("release Lease: %s", error)
                break
        self.state.leadership = Leadership()

    def release(self, reason: str) -> None:
        """Leave for good: stop taking writes first, then hand the Lease over."""
        self.state.released = True
        if self.state.role == PRIMARY:
            self._fence(reason)
            self._await_replication()
        self._give_up_lease()
        self.run.mark_released()
        self._label(self.settings.pod_name, SECONDARY)
        self.metrics.set("bind_ha_is_leader", 0)
        log.info("released the Lease: %s", reason)

    def _await_replication(self, timeout: float = 3.0) -> None:
        """Before handing over, wait (bounded) until every healthy peer serves our last serial
        of every dynamic zone: the next primary then starts from every acknowledged update."""
        dynamic = [spec.name for spec in self.catalog.specs() if spec.dynamic]
        ours = {zone: self.bind.serial(zone) for zone in dynamic}
        targets = [
            peer.ip
            for peer in self.state.pods
            if peer.name != self.settings.pod_name
            and peer.ip
            and not peer.deleting
            and peer.status is not None
            and peer.status.healthy
        ]
        deadline = self.clock.monotonic() + timeout
        while True:
            behind = [
                (ip, zone)
                for ip in targets
                for zone, serial in ours.items()
                if serial is not None and soa.ask(zone, ip, self.settings.dns_port, 0.5).serial != serial
            ]
            if not behind:
                return
            if self.clock.monotonic() > deadline:
                log.warning("handing over although %d peer zone(s) lag: %s", len(behind), behind[:5])
                return
            time.sleep(0.01)

    # ---- running -----------------------------------------------------------------------------

    def _since_renew(self) -> float:
        renewed = self.state.leadership.renewed_at
        return -1.0 if renewed is None else self.clock.monotonic() - renewed

    def healthy(self) -> tuple[bool, str]:
        """Alive and not stuck: a round finished recently."""
        last = self.state.last_round_at
        limit = max(30.0, 3 * self.timing.lease_duration)
        if last is None:
            return True, "starting"
        age = self.clock.monotonic() - last
        return age < limit, f"last round {age:.1f}s ago"

    def readiness(self) -> tuple[bool, str]:
        return self.state.ready, "configured" if self.state.ready else "first round not finished"

    def peer_changed(self, heartbeat: bool) -> None:
        """Called by the pod informer: run a round now, and after a leader's heartbeat one more
        shortly after, by when the Lease write it announced has landed."""
        if heartbeat:
            self.state.confirm_at = self.clock.monotonic() + CONFIRM_AFTER
        self.wake.set()

    def next_delay(self) -> float:
        """retryPeriod with up to 20% jitter (agents must not march in step), but no later
        than our own renew deadline or the moment the Lease we observe expires."""
        delay = self.timing.retry_period * (1 + 0.2 * random.random())
        now = self.clock.monotonic()
        leadership = self.state.leadership
        if self.state.role == PRIMARY and leadership.renewed_at is not None and not self.state.fenced:
            delay = min(delay, leadership.valid_until(self.timing) - now + 0.01)
        observation = self.state.observation
        if observation is not None and election.held_by_other(
            observation, self.settings.identity, now, self.timing
        ):
            delay = min(delay, election.expires_at(observation, self.timing) - now + 0.02)
        if self.state.confirm_at is not None:
            if self.state.confirm_at <= now:
                self.state.confirm_at = None
            else:
                delay = min(delay, self.state.confirm_at - now)
        return max(delay, 0.02)

    def run_forever(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                summary = self.round()
                if summary != self.state.last_summary:
                    log.info("%s", summary)
                    self.state.last_summary = summary
                delay = self.next_delay()
                log.debug("round: %s; next in %.2fs", summary, delay)
                self.wake.wait(delay)
                self.wake.clear()
        finally:
            if not self.state.released:
                self.release("agent stopping")
