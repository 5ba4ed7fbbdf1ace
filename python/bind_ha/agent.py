"""The agent: one election round every retry period, and BIND kept in step.

Each round reads the Lease and the release's pods, decides one Lease write
(election.plan), and then reconciles: the local named's role and config
(roles.LocalBind), the role labels, the published status, the fence mark. The
round is summarised in one log line whenever the decision differs from the
previous round's (every round at debug level).

Who may hold the primary role: a pod whose named answers, that has a copy of
every dynamic zone that ever held data (leasenotes.py), and that is not
standing aside after a failed promotion or after stepping down. A leader whose
own named stops answering its zones with AA for renewDeadline gives the Lease
up. Every API call of a round fits the leader's remaining renew budget; Events
are posted from their own thread.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from bind_ha import election, leasenotes, peers, requests, steering
from bind_ha.clock import Clock
from bind_ha.election import Leadership, LeaseMeta, Observation
from bind_ha.kube import ApiUnavailable, Conflict, Kube, micro_time
from bind_ha.leasenotes import LeaseNotes
from bind_ha.metrics import Metrics
from bind_ha.peers import PRIMARY, SECONDARY, Peer, Status
from bind_ha.roles import LocalBind, NoData, PromotionFailed
from bind_ha.runstate import RunDir
from bind_ha.settings import Settings
from bind_ha.steering import Reply

log = logging.getLogger("bind_ha.agent")
CONFIRM_AFTER = 0.25  # seconds after a heartbeat by when the announced Lease write has landed
NAMED_POLL = 0.25  # seconds between looks at named's control channel until it first answers
Events = Callable[[str, str, bool], None]  # (reason, message, warning), posted asynchronously

METRICS = (
    ("bind_ha_is_leader", "gauge", "1 while this pod holds the Lease and its BIND is primary"),
    ("bind_ha_fenced", "gauge", "1 while this pod's dynamic zones are frozen for lack of a renewed Lease"),
    ("bind_ha_leader_transitions_total", "counter", "times this agent became leader"),
    ("bind_ha_lease_transitions", "gauge", "leaseTransitions of the Lease as last read"),
    ("bind_ha_reconfigurations_total", "counter", "named.conf renderings applied with rndc reconfig"),
    ("bind_ha_reconfiguration_failures_total", "counter", "renderings refused by named-checkconf or rndc"),
    ("bind_ha_zone_serial", "gauge", "SOA serial this pod serves, per zone"),
    ("bind_ha_zone_source_valid", "gauge", "0 while a zone's current source is rejected (old data serves)"),
    ("bind_ha_zone_source_failures_total", "counter", "zone sources rejected by validation or not written"),
    ("bind_ha_api_requests_total", "counter", "Kubernetes API requests made by this agent"),
    ("bind_ha_api_errors_total", "counter", "Kubernetes API requests that failed or timed out"),
    ("bind_ha_rounds_total", "counter", "election rounds run"),
    ("bind_ha_round_failures_total", "counter", "rounds cut short by an unexpected error (see the log)"),
    ("bind_ha_standing_aside", "gauge", "1 while this pod may not become primary (see the log for why)"),
    (
        "bind_ha_zone_data_missing",
        "gauge",
        "1 for a dynamic zone that held data and of which this pod has no copy (it stands aside)",
    ),
    ("bind_ha_pod_cache_invalidations_total", "counter", "times the pod cache was found stale and re-listed"),
    ("bind_ha_automation_paused", "gauge", "1 while the Lease says automation is paused (bind-ha pause)"),
)


class LeaseReader(Protocol):
    def read_lease(self, timeout: float) -> tuple[election.LeaseRecord | None, str | None, LeaseMeta]: ...


def observe_lease(
    kube: LeaseReader, clock: Clock, previous: Observation | None, timeout: float
) -> Observation:
    """Read the Lease and fold it into what we knew. The clock is read after the answer
    arrived (client-go's observedTime): a read that took long and returned the last renewal
    must not date that renewal earlier than we saw it, or we would take over too soon."""
    record, version, meta = kube.read_lease(timeout)
    return election.observe(previous, record, version, clock.monotonic(), meta)


class PodSource(Protocol):
    """The pod informer (kube.PodCache), as the agent uses it."""

    def peers(self) -> list[Peer] | None: ...

    def invalidate(self, reason: str) -> None: ...

    def age(self) -> float | None: ...


@dataclass
class AgentState:
    observation: Observation | None = None
    leadership: Leadership = field(default_factory=Leadership)
    notes: LeaseNotes = field(default_factory=LeaseNotes)  # from the Lease, as last read or written
    acquirable_since: float | None = None
    ineligible_until: float = 0.0  # after a failed promotion or stepping down: stand aside a while
    ineligible_reason: str = ""
    handover_until: float | None = None  # handing the role over (stopping): until when we may wait
    released: bool = False  # gave the Lease up (named stopping / SIGTERM)
    stopping: bool = False  # the agent itself was told to stop
    published: Status | None = None
    pods: list[Peer] = field(default_factory=list)  # as of the last round
    ready: bool = False
    last_round_at: float | None = None
    last_summary: str = ""
    confirm_at: float | None = None  # a re-read of the Lease announced by a leader's heartbeat
    live_peers: dict[str, Peer] = field(default_factory=dict)  # peers with serials asked directly
    named_up: bool = False  # named's control channel answered once (it starts after this agent)
    leader_seen: tuple[str, str] | None = None  # (identity, IP) of the Lease holder's pod, last listed
    serving_failed_since: float | None = None  # primary whose named has not answered every zone
    beat_missed_since: float | None = None  # the pod cache has not shown the Lease's last renewal
    missing: tuple[str, ...] = ()  # dynamic zones that held data and that this pod lacks
    # The operator's requests (steering.py): this round's decisions, answers still to write, a
    # switchover this primary carries out, a failover this pod carries out (and since when).
    asked: requests.Requests = field(default_factory=requests.Requests)
    situation: steering.Situation | None = None
    plan: steering.Plan = field(default_factory=steering.Plan)
    outbox: steering.Outbox = field(default_factory=steering.Outbox)
    switching: steering.Switching | None = None
    takeover: tuple[steering.TakeOver, float] | None = None
    took_over: tuple[str, tuple[str, ...], float] | None = None
    failed_failover: tuple[str, str] | None = None


class Agent:
    def __init__(
        self,
        *,
        settings: Settings,
        kube: Kube,
        local: LocalBind,
        clock: Clock,
        metrics: Metrics,
        run: RunDir,
        events: Events,
        pod_cache: PodSource | None = None,
    ) -> None:
        self.settings = settings
        self.timing = settings.timing
        self.kube = kube
        self.local = local
        self.clock = clock
        self.metrics = metrics
        self.run = run
        self.events = events
        self.pod_cache = pod_cache  # the pod informer; rounds list pods when it is out of sync
        self.request_keys = requests.Keys(settings.label_prefix)
        self.state = AgentState()
        self.wake = threading.Event()
        for name, kind, text in METRICS:
            metrics.declare(name, kind, text)
        metrics.declare(
            "bind_ha_seconds_since_last_renew",
            "gauge",
            "seconds since this agent last renewed the Lease (-1: never)",
            self._since_renew,
        )
        metrics.declare(
            "bind_ha_pod_cache_age_seconds",
            "gauge",
            "seconds since the pod cache last heard from the API server (-1: not listed yet)",
            self._cache_age,
        )

    # ---- the round -------------------------------------------------------------------------

    def round(self) -> str:
        """One election round; returns its one-line summary."""
        self.metrics.inc("bind_ha_rounds_total")
        if not self.state.ready:
            self.local.sync_sources()  # the first config must list every zone
        self._check_deadline()
        if self.run.stopping() and self.state.handover_until is None and not self.state.released:
            self.begin_handover("named is stopping")
        elif self.state.released and not self.run.stopping() and not self.state.stopping:
            self.state.released = False  # named was restarted (its container, not the pod): rejoin
            log.info("named restarted: a candidate again")
        try:
            summary = self._elect_and_reconcile()
        except ApiUnavailable as error:
            self.metrics.inc("bind_ha_api_errors_total")
            summary = f"API unavailable: {error}"
        self.local.sync_sources()  # after the Lease work: compiling zones never delays a renewal
        self._check_deadline()
        self.state.last_round_at = self.clock.monotonic()
        self.metrics.set("bind_ha_api_requests_total", self.kube.requests)
        return summary

    def _check_deadline(self) -> None:
        """A leader past its renew deadline fences at once, even if its last request is still out."""
        now = self.clock.monotonic()
        local = self.local.state
        if (
            local.layout.primary_anywhere
            and not local.fenced
            and self.state.leadership.expired(now, self.timing)
        ):
            self.local.fence("renew deadline passed without a successful renewal")

    def _timeout(self) -> float:
        return election.request_timeout(self.state.leadership, self.clock.monotonic(), self.timing)

    def _elect_and_reconcile(self) -> str:
        if not self._named_up():
            return "waiting for named's control channel: not a candidate"
        previous = self.state.observation
        observation = self.state.observation = observe_lease(self.kube, self.clock, previous, self._timeout())
        now = self.clock.monotonic()
        record = observation.record
        if previous is None or record != previous.record:
            log.debug(
                "Lease changed: version %s, holder %s, renewed %s",
                observation.version,
                record.holder if record else None,
                record.renew_time if record else None,
            )
        self._read_notes(observation.meta)
        status = self.local.status()  # first: a leader whose named cannot serve must step down
        self._track_serving(status, now)
        pods = self._peers(now)
        self._steer(pods, status)
        summary = self._lease_round(pods, status)
        changed = self._reconcile_bind(self._leading(), pods)
        leading = self._leading()
        self.metrics.set("bind_ha_is_leader", 1 if leading and self.local.state.role == PRIMARY else 0)
        if record is not None:
            self.metrics.set("bind_ha_lease_transitions", record.transitions)
        if changed != "promoted":  # a promotion has just set every label
            self._fix_labels(pods, leading)
        if changed is not None:
            status = self.local.status()
        self._publish(status)
        leader_ip = None if leading else self._leader_ip(pods)
        self.local.update_synced(status, leader_ip)
        self.state.pods = pods
        self.state.ready = True
        return summary

    def _named_up(self) -> bool:
        """The agent starts before named (a native sidecar): until named's control channel
        answers, no rndc command is sent and this pod stands for no election."""
        self.state.named_up = self.state.named_up or self.local.bind.alive()
        return self.state.named_up

    def _leading(self) -> bool:
        return (
            not self.state.released
            and self.state.leadership.leading(self.clock.monotonic(), self.timing)
            and election.holder(self.state.observation) == self.settings.identity
        )

    def _read_notes(self, meta: LeaseMeta) -> None:
        notes, problems = leasenotes.read(meta.annotations, self.settings.label_prefix)
        for problem in problems:
            log.warning("Lease annotation ignored: %s", problem)
        self.state.notes = notes
        self.local.notes = notes

    # ---- pods --------------------------------------------------------------------------------

    def _peers(self, now: float) -> list[Peer]:
        """The release's pods: from the cache when it is in sync, else a LIST."""
        pods = self.pod_cache.peers() if self.pod_cache is not None else None
        if pods is not None and self._cache_missed_renewal(pods, now):
            pods = None
        if pods is None:
            pods = self.kube.list_peers(self._timeout())
        return pods

    def _cache_missed_renewal(self, pods: list[Peer], now: float) -> bool:
        """A watch that went half-open delivers nothing, and a cache fed by it goes stale without
        an error. The Lease we just read tells: the holder announces each renewal on its pod
        before writing it, so a cache that still shows an older announcement after two retry
        periods has stopped hearing from the API server. It is invalidated (and re-lists)."""
        record = self.state.observation.record if self.state.observation else None
        holder = next((peer for peer in pods if record and peer.identity == record.holder), None)
        if record is None or record.renew_time is None or holder is None:
            self.state.beat_missed_since = None
            return False
        announced = micro_time(record.renew_time)
        if holder.heartbeat is not None and holder.heartbeat >= announced:  # MicroTime text sorts by time
            self.state.beat_missed_since = None
            return False
        if self.state.beat_missed_since is None:
            self.state.beat_missed_since = now
            return False
        if now - self.state.beat_missed_since <= 2 * self.timing.retry_period + 1:
            return False
        self.state.beat_missed_since = None
        assert self.pod_cache is not None
        self.pod_cache.invalidate(f"it still shows {holder.name}'s renewal before {announced}")
        self.metrics.inc("bind_ha_pod_cache_invalidations_total")
        return True

    # ---- the Lease ---------------------------------------------------------------------------

    def _lease_round(self, pods: list[Peer], status: Status) -> str:
        """Plan and attempt this round's single Lease write."""
        observation = self.state.observation
        assert observation is not None
        now = self.clock.monotonic()
        me = self.settings.identity
        holder = election.holder(observation)
        if holder != me:
            self.state.leadership = Leadership()  # whatever we believed, the Lease says otherwise
        held = election.held_by_other(observation, me, now, self.timing)
        if held:
            self.state.acquirable_since = None
        elif self.state.acquirable_since is None:
            self.state.acquirable_since = now
        if self.state.released:
            return "released: not a candidate"
        if holder == me and self._named_failing_too_long(now) and steering.may_step_down(self.state.asked):
            return self._step_down()
        reason = None
        if holder != me and not held:  # a candidate for an acquirable Lease weighs itself against its peers
            reason = self._defer_reason(pods, holder, now, status)
        action = election.plan(
            observation,
            identity=me,
            now=now,
            wall_now=self.clock.wall(),
            timing=self.timing,
            defer_reason=reason,
        )
        if isinstance(action, election.Wait):
            self._write_answers()
            return f"follower: {action.reason}"
        # Handed the Lease (a switchover or failover): our first write is an acquisition.
        return self._write_lease(
            action, renewing=holder == me and self.state.leadership.renewed_at is not None
        )

    def _defer_reason(self, pods: list[Peer], holder: str | None, now: float, status: Status) -> str | None:
        missing = self._missing_data()
        if self.state.handover_until is not None:
            return "handing over: not a candidate"
        if isinstance(self.state.plan.failover, steering.TakeOver):
            return None  # an operator's failover names this pod: no pause, deference or standing aside
        if self.state.plan.take_gate is not None:
            return self.state.plan.take_gate
        if now < self.state.ineligible_until:
            return self.state.ineligible_reason
        if missing:
            return (
                f"standing aside: dynamic zone(s) {', '.join(missing)} held data and this pod has no copy; "
                f"waiting for a pod that has them (or an operator's "
                f"{self.settings.label_prefix}/{leasenotes.RESEED} request)"
            )
        # The holder of an expired Lease is the pod that failed: never wait for it. The others
        # are asked for their serials now: a published status may lag the last updates by a round.
        candidates = [
            replace(peer, status=self.local.live_status(peer.ip))
            for peer in pods
            if peer.identity != holder
            and peer.name != self.settings.pod_name
            and peer.ip
            and not peer.deleting
            and peer.status is not None  # a pod that never reported, or withdrew, is no candidate
            and peer.status.healthy
        ]
        self.state.live_peers = {peer.name: peer for peer in candidates if peer.status is not None}
        return peers.defer_reason(
            status,
            candidates,
            self.settings.pod_name,
            acquirable_for=now - (self.state.acquirable_since or now),
            lease_duration=self.timing.lease_duration,
        )

    def _missing_data(self) -> tuple[str, ...]:
        """Dynamic zones that held data and that this pod has no copy of: reported (log, metric,
        Event) when the set changes."""
        missing = tuple(self.local.missing_data())
        if missing != self.state.missing:
            for zone in set(self.state.missing) - set(missing):
                self.metrics.remove("bind_ha_zone_data_missing", zone=zone)
            for zone in missing:
                self.metrics.set("bind_ha_zone_data_missing", 1, zone=zone)
            if missing:
                message = (
                    f"{self.settings.pod_name} has no copy of dynamic zone(s) {', '.join(missing)}, which "
                    "held data: it will not become primary (seeding them would lose that data) until a "
                    f"pod that has them is back, or an operator asks for a reseed with the Lease annotation "
                    f"{self.settings.label_prefix}/{leasenotes.RESEED}"
                )
                log.warning("%s", message)
                self.events("StandingAside", message, True)
            else:
                log.info("every dynamic zone that held data is here (or may be reseeded)")
            self.state.missing = missing
        self.metrics.set("bind_ha_standing_aside", 1 if missing or self._ineligible() else 0)
        return missing

    def _ineligible(self) -> bool:
        return self.clock.monotonic() < self.state.ineligible_until

    def _write_lease(
        self,
        action: election.Create | election.Update,
        *,
        renewing: bool,
        serving: frozenset[str] | None = None,
    ) -> str:
        """Attempt one Lease write; serving: the zones to record as served (default: what a
        serving primary serves now)."""
        observation = self.state.observation
        assert observation is not None
        notes = self._notes_to_write(renewing, serving)
        takeover = self.state.plan.failover if not renewing else None
        if isinstance(takeover, steering.TakeOver):  # a forced failover seeds what no pod has
            notes = replace(notes, reseed=notes.reseed | takeover.reseed)
        replies, resumed = self._pending_answers(notes)
        annotations = leasenotes.written(observation.meta.annotations, self.settings.label_prefix, notes)
        meta = LeaseMeta(
            labels=observation.meta.labels,
            annotations=steering.apply_edits(
                annotations, steering.edits(replies, resumed, self.request_keys)
            ),
        )
        self._heartbeat(action.record)
        started = self.clock.monotonic()
        try:
            if isinstance(action, election.Create):
                version = self.kube.create_lease(action.record, meta, self._timeout())
            else:
                version = self.kube.replace_lease(action.record, action.version, meta, self._timeout())
        except Conflict:
            self._unwritten(replies)
            return "lost a Lease race (409): re-reading next round"
        except ApiUnavailable as error:
            self._unwritten(replies)
            self.metrics.inc("bind_ha_api_errors_total")
            return f"Lease write failed: {error}"
        self.state.leadership = Leadership(renewed_at=started)
        self.state.observation = Observation(action.record, version, changed_at=started, meta=meta)
        self._noted(notes)
        self._answered(replies, resumed)
        if isinstance(takeover, steering.TakeOver):
            self.state.takeover = (takeover, started)
        if renewing:
            return "leader: renewed"
        self.metrics.inc("bind_ha_leader_transitions_total")
        return f"leader: acquired the Lease (transition {action.record.transitions})"

    def _notes_to_write(self, renewing: bool, serving: frozenset[str] | None) -> LeaseNotes:
        """A serving primary records in each renewal the dynamic zones it serves (they may take
        updates from then on) and settles reseed requests for zones it serves."""
        local = self.local.state
        if serving is None:
            if not renewing or local.role != PRIMARY or local.layout.staged is not None:
                return self.state.notes
            serving = self.local.served_zones()
        return leasenotes.after_renewal(self.state.notes, serving=serving, dynamic=self.local.dynamic_zones())

    def _noted(self, notes: LeaseNotes) -> None:
        before = self.state.notes
        for zone in sorted(notes.zones_with_data - before.zones_with_data):
            log.info("Lease records dynamic zone %s as holding data: it takes clients' updates", zone)
        for zone in sorted(before.reseed - notes.reseed):
            log.info("reseed request for %s settled: this primary serves it", zone)
        self.state.notes = notes
        self.local.notes = notes

    def _heartbeat(self, record: election.LeaseRecord) -> None:
        """Announce the Lease write we are about to make on our pod. Followers' pod watches see
        it within milliseconds and read the Lease again CONFIRM_AFTER later, so they judge expiry
        from (almost) the real renewal time rather than from their next poll. It goes first:
        a crash between the two writes then leaves no renewal unannounced."""
        if record.renew_time is None:
            return
        try:
            self.kube.heartbeat(micro_time(record.renew_time), self._timeout())
        except (ApiUnavailable, Conflict) as error:
            log.debug("heartbeat: %s", error)

    # ---- the operator's requests (steering.py) ------------------------------------------------

    def _steer(self, pods: list[Peer], status: Status) -> None:
        """Decide this round's answers to the operator's requests on the Lease."""
        observation = self.state.observation
        assert observation is not None
        found = requests.read(observation.meta.annotations, self.request_keys)
        self.state.asked = found
        self.metrics.set("bind_ha_automation_paused", 1 if found.paused else 0)
        if found.failover is None or found.failover.id != (self.state.took_over or ("",))[0]:
            self.state.took_over = None  # answered (or withdrawn): forget it
        if found.failover is None or found.failover.id != (self.state.failed_failover or ("",))[0]:
            self.state.failed_failover = None
        local = self.local.state
        leading = self._leading()
        serving = (
            leading
            and local.role == PRIMARY
            and local.layout.staged is None
            and status.healthy
            and not local.serving_problems
            and self.state.switching is None
        )
        situation = steering.Situation(
            me=self.settings.pod_name,
            leading=leading,
            serving=serving,
            held_by_other=election.held_by_other(
                observation, self.settings.identity, self.clock.monotonic(), self.timing
            ),
            requests=found,
            pods=tuple(pods),
            mine=status,
            missing=tuple(self.local.missing_data()),
            with_data=self.state.notes.zones_with_data,
            dynamic=self.local.dynamic_zones(),
            served=self.local.served_zones() if serving else frozenset(),
            wall_now=self.clock.wall(),
            busy=self.state.switching.request.id if self.state.switching else None,
            failed=self.state.failed_failover,
            took_over=self.state.took_over,
            pending=self.state.outbox.keys(),
        )
        self.state.situation = situation
        self.state.plan = steering.decide(situation)
        for reply in self.state.plan.replies:
            log.info("answering %s", steering.describe(reply.answer))

    def _pending_answers(
        self, notes: LeaseNotes | None = None
    ) -> tuple[tuple[Reply, ...], steering.Resumed | None]:
        """What the next Lease write answers: held-over answers first, then this round's, and
        a reseed that the notes to be written settle."""
        replies = self.state.outbox.take(self.state.asked) + self.state.plan.replies
        situation = self.state.situation
        if (
            notes is not None
            and situation is not None
            and all(reply.answer.kind != requests.RESEED for reply in replies)
        ):
            settled = steering.reseed_settled(situation, notes.reseed)
            replies += (settled,) if settled is not None else ()
        return replies, self.state.plan.resumed

    def _answered(self, replies: tuple[Reply, ...], resumed: steering.Resumed | None) -> None:
        """The write landed: report each answer once, and write none of them again."""
        for reply in replies:
            self.events(*reply.event)
        if resumed is not None:
            self.events("Resumed", "automation resumed: pods take the Lease and change roles again", False)
        self.state.plan = replace(self.state.plan, replies=(), resumed=None)

    def _unwritten(self, replies: tuple[Reply, ...]) -> None:
        """A write failed: keep the answers no later round would decide again (a switchover's)."""
        self.state.outbox.add(*(reply for reply in replies if reply.answer.kind == requests.SWITCHOVER))

    def _write_answers(self, *extra: Reply) -> None:
        """Answer without renewing (this pod does not hold the Lease, or it just gave it away):
        the Lease written back exactly as read (the agent may update, not patch, it), with
        only the answers changed. Its leader record is the one read, so no observer counts
        this write as a renewal."""
        self.state.outbox.add(*extra)
        replies, resumed = self._pending_answers()
        observation = self.state.observation
        if (not replies and resumed is None) or observation is None or observation.record is None:
            self._unwritten(replies)
            return
        changes = steering.edits(replies, resumed, self.request_keys)
        meta = replace(
            observation.meta, annotations=steering.apply_edits(observation.meta.annotations, changes)
        )
        try:
            version = self.kube.replace_lease(observation.record, observation.version, meta, self._timeout())
        except (Conflict, ApiUnavailable) as error:
            log.info("answer not written (%s): trying again next round", error)
            self._unwritten(replies)
            return
        self.state.observation = replace(observation, version=version, meta=meta)
        self._answered(replies, resumed)

    def _operator_move(self) -> None:
        """A serving primary starts a switchover; one that cannot serve hands a failover on."""
        plan = self.state.plan
        if plan.switchover is not None:
            self._start_switchover(plan.switchover)
        elif isinstance(plan.failover, steering.HandOn):
            self._hand_lease(plan.failover.target, (), reseed=plan.failover.reseed)

    def _start_switchover(self, start: steering.StartSwitchover) -> None:
        """The graceful handover's path, to one chosen pod: check it keeps up, freeze writes,
        then (in the next rounds) wait until it serves our last serials and hand it the Lease."""
        target, situation = start.target, self.state.situation
        assert situation is not None and target.ip
        if not self.local.await_replication([target], steering.PRECHECK_SECONDS):
            reason = steering.not_in_step(
                target.name,
                dict(self.local.state.last_serials),
                self.local.live_status(target.ip),
                steering.PRECHECK_SECONDS,
            )
            self._write_answers(
                Reply(steering.answer(situation, start.request, "refused", reason), warning=True)
            )
            return
        self.local.fence(f"switchover to {target.name}")
        now = self.clock.monotonic()
        wait = min(self.settings.handover_wait, (start.request.deadline - self.clock.wall()).total_seconds())
        self.state.switching = steering.Switching(start.request, target, frozen_at=now, give_up_at=now + wait)
        log.info("switchover to %s: writes frozen, waiting up to %.1fs for it to catch up", target.name, wait)

    def _switch_round(self, pods: list[Peer]) -> None:
        switching, situation = self.state.switching, self.state.situation
        assert switching is not None and situation is not None
        left = switching.give_up_at - self.clock.monotonic()
        in_step = self.local.await_replication(
            [switching.target], max(0.0, min(self.timing.retry_period, left))
        )
        now_situation = replace(
            situation, leading=self._leading(), pods=tuple(pods), wall_now=self.clock.wall()
        )
        step = steering.switch_step(switching, now_situation, in_step=in_step, now=self.clock.monotonic())
        if isinstance(step, steering.KeepWaiting):
            return
        if isinstance(step, steering.Hand):
            if self._hand_lease(switching.target, (step.reply,)):
                self.state.switching = None
            return
        self.state.switching = None  # GiveUp: the next round thaws (serve_as_primary) and answers
        log.warning("%s", steering.describe(step.reply.answer))
        self._write_answers(step.reply)

    def _hand_lease(
        self, target: Peer, replies: tuple[Reply, ...], *, reseed: frozenset[str] = frozenset()
    ) -> bool:
        """Write the Lease with target as its holder (and these answers): it renews it from its
        next round as its own, and is promoted; we are demoted in this round. True once written."""
        observation = self.state.observation
        record = observation.record if observation else None
        if observation is None or record is None or record.holder != self.settings.identity:
            return False
        handed = steering.handed(
            record, to=target.identity, wall_now=self.clock.wall(), duration=int(self.timing.lease_duration)
        )
        notes = replace(self.state.notes, reseed=self.state.notes.reseed | reseed)
        annotations = leasenotes.written(observation.meta.annotations, self.settings.label_prefix, notes)
        changes = steering.edits(replies, None, self.request_keys)
        meta = LeaseMeta(
            labels=observation.meta.labels, annotations=steering.apply_edits(annotations, changes)
        )
        started = self.clock.monotonic()
        try:
            version = self.kube.replace_lease(handed, observation.version, meta, self._timeout())
        except (Conflict, ApiUnavailable) as error:
            log.warning("handing the Lease to %s: %s; trying again next round", target.name, error)
            return False
        self.state.leadership = Leadership()
        self.state.observation = Observation(handed, version, changed_at=started, meta=meta)
        self._noted(notes)
        self._answered(replies, None)
        log.info("handed the Lease to %s", target.name)
        return True

    # ---- a primary that cannot serve ---------------------------------------------------------------

    def _track_serving(self, status: Status, now: float) -> None:
        """Since when a primary's own named has not answered every zone with AA."""
        leaving = self.state.handover_until is not None or self.state.released or self.run.stopping()
        failing = (
            self.local.state.role == PRIMARY
            and not leaving  # a stopping pod publishes itself unhealthy on purpose
            and (not status.healthy or bool(self.local.state.serving_problems))
        )
        if not failing:
            self.state.serving_failed_since = None
        elif self.state.serving_failed_since is None:
            self.state.serving_failed_since = now

    def _named_failing_too_long(self, now: float) -> bool:
        since = self.state.serving_failed_since
        return since is not None and now - since >= self.timing.renew_deadline

    def _step_down(self) -> str:
        """Our named has not served every zone for renewDeadline: writes fail here, so fence, give
        the Lease up and stand aside, and another pod is primary within a few rounds."""
        problems = "; ".join(self.local.state.serving_problems[:3]) or "named does not answer"
        message = (
            f"{self.settings.pod_name}'s named has not answered every zone with AA for "
            f"{self.timing.renew_deadline:g}s ({problems}): giving the primary role up"
        )
        log.error("%s", message)
        self.local.fence("this pod's named cannot serve")
        self._give_up_lease()
        self._stand_aside("standing aside: this pod's named could not serve as primary")
        self.state.serving_failed_since = None
        self.events("SteppedDown", message, True)
        return "stepped down: named cannot serve"

    def _stand_aside(self, reason: str) -> None:
        """Leave the Lease to the others for a lease duration (then only if they do not take it)."""
        self.state.ineligible_until = self.clock.monotonic() + self.timing.lease_duration
        self.state.ineligible_reason = reason
        self.metrics.set("bind_ha_standing_aside", 1)

    # ---- BIND ------------------------------------------------------------------------------

    def _reconcile_bind(self, leading: bool, pods: list[Peer]) -> str | None:
        """Make named match the election; returns what changed ("promoted", "demoted") or None."""
        local = self.local
        if self.state.handover_until is not None:
            self.run.set_valid_until(0.0)  # handing over: keep the Lease, take no writes
            self._hand_over(pods)
            return None
        if self.state.switching is not None:
            self.run.set_valid_until(0.0)  # a switchover: keep the Lease, take no writes
            self._switch_round(pods)
            return None
        if leading:
            self.run.set_valid_until(self.state.leadership.valid_until(self.timing))
            if local.state.role != PRIMARY or local.state.layout.staged is not None:
                return self._promote(pods)
            local.serve_as_primary(pods, self._leading)
            self._operator_move()
            return None
        self.run.set_valid_until(0.0)
        leader_ip = self._leader_ip(pods)
        if local.state.role != PRIMARY:
            local.follow(pods, leader_ip)
        elif local.demote(pods, leader_ip):
            self.events("Demoted", f"{self.settings.pod_name} is a secondary again", False)
            log.info("demoted: following %s", leader_ip or "nobody yet")
            return "demoted"
        return None

    def _leader_ip(self, pods: list[Peer]) -> str | None:
        """Where to transfer from: the Lease holder's pod, or where it was (peers.followed_address)."""
        address, self.state.leader_seen = peers.followed_address(
            pods, election.holder(self.state.observation), self.state.leader_seen
        )
        return address

    def _promote(self, pods: list[Peer]) -> str | None:
        """Become primary: relabel others (from a fresh list: a stale cache could miss one),
        promote BIND, then label self (in that order) if we are still the leader."""
        try:
            listed = self.kube.list_peers(self._timeout())
        except ApiUnavailable as error:
            log.warning("promotion postponed: cannot list pods to relabel them: %s", error)
            return None
        # Serials peers reported just now beat the ones they published a round ago.
        listed = [self.state.live_peers.get(peer.name, peer) for peer in listed]
        for fix in peers.label_fixes(listed, self.settings.pod_name, leading=True):
            if fix.pod != self.settings.pod_name:
                self._label(fix.pod, fix.role)
        try:
            done = self.local.promote(listed, self._leading, self._record_staged_zones)
        except PromotionFailed as error:
            if not self._leading() and not isinstance(error, NoData):  # e.g. fenced mid-way
                log.warning("promotion abandoned, leadership lapsed meanwhile: %s", error)
                return None
            log.error("promotion failed: %s; giving the Lease up", error)
            self.events("PromotionFailed", str(error), True)
            if self.state.takeover is not None:  # answered `failed` from the next round
                self.state.failed_failover = (self.state.takeover[0].request.id, str(error))
                self.state.takeover = None
            self._give_up_lease()
            reason = "missing data" if isinstance(error, NoData) else "a failed promotion"
            self._stand_aside(f"standing aside after {reason}")
            return None
        if not done or not self._leading():
            log.warning("promotion finished after leadership lapsed: not labelled primary, no Promoted event")
            return None
        self._label(self.settings.pod_name, PRIMARY)
        self.events("Promoted", f"{self.settings.pod_name} is now the primary of every zone", False)
        if self.state.takeover is not None:  # answered `done` in the next renewal, at once
            takeover, since = self.state.takeover
            self.state.took_over = (takeover.request.id, takeover.losses, self.clock.monotonic() - since)
            self.state.takeover = None
            self.wake.set()
        log.info("promoted: %s is primary", self.settings.pod_name)
        if self.local.dynamic_zones() - self.state.notes.zones_with_data:
            self.wake.set()  # the record failed: the next renewal (at once) opens the new zones
        return "promoted"

    def _record_staged_zones(self) -> None:
        """Just before named switches to the staged primary view: renew the Lease recording every
        dynamic zone it is about to serve, so that clients may write to a zone seeded by this
        promotion from the first moment. (Only now: a promotion that fails earlier must not
        record a seed that was never served.) If this write fails, those zones take updates
        after the next renewal."""
        observation = self.state.observation
        if observation is None or election.holder(observation) != self.settings.identity:
            return
        action = election.plan(
            observation,
            identity=self.settings.identity,
            now=self.clock.monotonic(),
            wall_now=self.clock.wall(),
            timing=self.timing,
            defer_reason=None,
        )
        if isinstance(action, election.Update):
            staged = self.local.dynamic_zones()
            log.debug("%s", self._write_lease(action, renewing=True, serving=staged))

    # ---- labels, status --------------------------------------------------------------------------

    def _label(self, pod: str, role: str) -> None:
        try:
            self.kube.set_role(pod, role, self._timeout())
        except (ApiUnavailable, Conflict) as error:
            log.warning("label %s=%s: %s", pod, role, error)

    def _fix_labels(self, pods: list[Peer], leading: bool) -> None:
        for fix in peers.label_fixes(
            pods, self.settings.pod_name, leading and self.local.state.role == PRIMARY
        ):
            self._label(fix.pod, fix.role)

    def _publish(self, status: Status) -> None:
        if self.state.handover_until is not None or self.state.released:
            status = Status(healthy=False, serials=dict(status.serials))  # withdrawn: no candidate
        if status == self.state.published:
            return
        try:
            self.kube.publish_status(status, self._timeout())
            self.state.published = status
        except (ApiUnavailable, Conflict) as error:
            log.warning("publish status: %s", error)

    # ---- leaving -----------------------------------------------------------------------------

    def _give_up_lease(self) -> None:
        """Write an empty holder (retrying on 409) so the next candidate takes over at once."""
        for _attempt in range(3):
            try:
                record, version, meta = self.kube.read_lease(self.timing.request_timeout)
                observation = election.observe(
                    self.state.observation, record, version, self.clock.monotonic(), meta
                )
                self.state.observation = observation
                release = election.plan_release(
                    observation, identity=self.settings.identity, wall_now=self.clock.wall()
                )
                if release is None:
                    break
                version = self.kube.replace_lease(
                    release.record, release.version, observation.meta, self.timing.request_timeout
                )
                self.state.observation = replace(observation, record=release.record, version=version)
                break
            except Conflict:
                continue
            except ApiUnavailable as error:
                log.warning("release Lease: %s", error)
                break
        self.state.leadership = Leadership()

    def begin_handover(self, reason: str) -> None:
        """Leave for good: stop taking writes at once, withdraw our candidacy, and keep holding
        the Lease (renewing it) until a peer serves our last serials, so that the next primary
        starts from every acknowledged update; within the termination grace period."""
        self.state.handover_until = self.clock.monotonic() + self.settings.handover_wait
        self.run.set_valid_until(0.0)
        if self.local.state.layout.primary_anywhere:
            self.local.fence(reason)
        log.info(
            "handing over: %s (waiting up to %.0fs for a peer in step)", reason, self.settings.handover_wait
        )
        self._publish(Status(healthy=False, serials=dict(self.local.state.last_serials)))

    def _hand_over(self, pods: list[Peer]) -> None:
        """One round of a handover: done at once unless we are primary; a primary waits (up to a
        retry period per round, renewing in between) until one peer is in step."""
        until = self.state.handover_until
        assert until is not None
        left = until - self.clock.monotonic()
        me = self.settings.pod_name
        heirs = [peer for peer in pods if peer.name != me and peer.ip and not peer.deleting]
        if self.local.state.role == PRIMARY and heirs:
            in_step = self.local.await_replication(pods, max(0.0, min(self.timing.retry_period, left)))
            if not in_step and left > self.timing.retry_period:
                return
            if not in_step:
                message = (
                    f"{self.settings.pod_name} handed over although no peer served its last serials "
                    f"within {self.settings.handover_wait:g}s"
                )
                log.warning("%s", message)
                self.events("HandoverIncomplete", message, True)
        self.finish_handover()

    def finish_handover(self) -> None:
        self.state.released = True
        self.state.handover_until = None
        self._give_up_lease()
        self.run.mark_released()
        self._label(self.settings.pod_name, SECONDARY)
        self.metrics.set("bind_ha_is_leader", 0)
        log.info("released the Lease")

    # ---- running -----------------------------------------------------------------------------

    def _since_renew(self) -> float:
        renewed = self.state.leadership.renewed_at
        return -1.0 if renewed is None else self.clock.monotonic() - renewed

    def _cache_age(self) -> float:
        age = self.pod_cache.age() if self.pod_cache is not None else None
        return -1.0 if age is None else age

    def healthy(self) -> tuple[bool, str]:
        """Alive and not stuck: a round finished recently."""
        last = self.state.last_round_at
        if last is None:
            return True, "starting"
        age = self.clock.monotonic() - last
        return age < max(30.0, 3 * self.timing.lease_duration), f"last round {age:.1f}s ago"

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
        than our own renew deadline, the moment the Lease we observe expires, or a confirming
        re-read after a heartbeat."""
        delay = self.timing.retry_period * (1 + 0.2 * random.random())
        if not self.state.named_up:
            delay = min(delay, NAMED_POLL)
        now = self.clock.monotonic()
        leadership = self.state.leadership
        if (
            self.local.state.role == PRIMARY
            and leadership.renewed_at is not None
            and not self.local.state.fenced
        ):
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
        if self.state.handover_until is not None or self.state.switching is not None:
            delay = min(delay, 0.05)  # the next handover round soon (it waits inside)
        return max(delay, 0.02)

    def run_forever(self, stop: threading.Event) -> None:
        """Rounds until stopped; a stopping agent hands its role over first (in rounds, so it
        keeps renewing the Lease while it waits for a peer)."""
        try:
            while not (stop.is_set() and self.state.released):
                if stop.is_set() and self.state.handover_until is None:
                    self.state.stopping = True
                    self.begin_handover("agent stopping")
                self.wake.clear()  # before the round: a wake-up during it starts the next at once
                try:
                    summary = self.round()
                except Exception as error:  # one bad round must not end the election for this pod
                    self.metrics.inc("bind_ha_round_failures_total")
                    log.exception("round failed: %s", error)
                    self._check_deadline()
                    summary = f"round failed: {type(error).__name__}"
                if summary != self.state.last_summary:
                    log.info("%s", summary)
                    self.state.last_summary = summary
                if stop.is_set() and self.state.released:
                    break
                delay = self.next_delay()
                log.debug("round: %s; next in %.2fs", summary, delay)
                self.wake.wait(delay)
        finally:
            if not self.state.released:
                self.finish_handover()
