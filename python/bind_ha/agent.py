"""The agent: one election round every retry period, and BIND kept in step.

Each round reads the Lease and the release's pods, decides one Lease write
(election.plan), and then reconciles: the local named's role and config
(roles.LocalBind), the role labels, the published status, the fence mark. The
round is summarised in one log line whenever the decision differs from the
previous round's (every round at debug level).
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bind_ha import election, peers
from bind_ha.clock import Clock
from bind_ha.election import Leadership, Observation
from bind_ha.kube import ApiUnavailable, Conflict, Kube, micro_time
from bind_ha.metrics import Metrics
from bind_ha.peers import PRIMARY, SECONDARY, Peer, Status
from bind_ha.roles import LocalBind, PromotionFailed
from bind_ha.runstate import RunDir
from bind_ha.settings import Settings

log = logging.getLogger("bind_ha.agent")
CONFIRM_AFTER = 0.25  # seconds after a heartbeat by when the announced Lease write has landed
HANDOVER_WAIT = 3.0  # seconds a leaving primary waits for its peers to catch up
NAMED_POLL = 0.25  # seconds between looks at named's control channel until it first answers

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
)


@dataclass
class AgentState:
    observation: Observation | None = None
    leadership: Leadership = field(default_factory=Leadership)
    acquirable_since: float | None = None
    ineligible_until: float = 0.0  # after a failed promotion: stand aside a while
    released: bool = False  # gave the Lease up for good (named stopping / SIGTERM)
    published: Status | None = None
    pods: list[Peer] = field(default_factory=list)  # as of the last round
    ready: bool = False
    last_round_at: float | None = None
    last_summary: str = ""
    confirm_at: float | None = None  # a re-read of the Lease announced by a leader's heartbeat
    live_peers: dict[str, Peer] = field(default_factory=dict)  # peers with serials asked directly
    named_up: bool = False  # named's control channel answered once (it starts after this agent)
    leader_seen: tuple[str, str] | None = None  # (identity, IP) of the Lease holder's pod, last listed


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
        cached_peers: Callable[[], list[Peer] | None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.timing = settings.timing
        self.kube = kube
        self.local = local
        self.clock = clock
        self.metrics = metrics
        self.run = run
        self.cached_peers = cached_peers  # the pod informer, when it is in sync
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
        local.recover_after_restart()

    # ---- the round -------------------------------------------------------------------------

    def round(self) -> str:
        """One election round; returns its one-line summary."""
        self.metrics.inc("bind_ha_rounds_total")
        if not self.state.ready:
            self.local.sync_sources()  # the first config must list every zone
        self._check_deadline()
        if self.run.stopping() and not self.state.released:
            self.release("named is stopping")
        try:
            summary = self._elect_and_reconcile(self.clock.monotonic())
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
        if local.role == PRIMARY and not local.fenced and self.state.leadership.expired(now, self.timing):
            self.local.fence("renew deadline passed without a successful renewal")

    def _timeout(self) -> float:
        return election.request_timeout(self.state.leadership, self.clock.monotonic(), self.timing)

    def _elect_and_reconcile(self, now: float) -> str:
        if not self._named_up():
            return "waiting for named's control channel: not a candidate"
        record, version = self.kube.read_lease(self._timeout())
        previous = self.state.observation
        self.state.observation = election.observe(previous, record, version, now)
        if self.state.observation is not previous:
            log.debug(
                "Lease changed: version %s, holder %s, renewed %s",
                version,
                record.holder if record else None,
                record.renew_time if record else None,
            )
        pods = self.cached_peers()
        if pods is None:
            pods = self.kube.list_peers(self._timeout())
        summary = self._lease_round(pods)
        promoted = self._reconcile_bind(self._leading(), pods)
        leading = self._leading()
        self.metrics.set("bind_ha_is_leader", 1 if leading and self.local.state.role == PRIMARY else 0)
        if record is not None:
            self.metrics.set("bind_ha_lease_transitions", record.transitions)
        if not promoted:  # a promotion has just set every label
            self._fix_labels(pods, leading)
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

    def _lease_round(self, pods: list[Peer]) -> str:
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
        reason = None
        if holder != me and not held:  # a candidate for an acquirable Lease weighs itself against its peers
            reason = self._defer_reason(pods, holder, now)
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
        return self._write_lease(action, renewing=holder == me)

    def _defer_reason(self, pods: list[Peer], holder: str | None, now: float) -> str | None:
        if now < self.state.ineligible_until:
            return "standing aside after a failed promotion"
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
            self.local.status(),
            candidates,
            self.settings.pod_name,
            acquirable_for=now - (self.state.acquirable_since or now),
            lease_duration=self.timing.lease_duration,
            dynamic_zones=self.local.dynamic_zones(),
        )

    def _write_lease(self, action: election.Create | election.Update, *, renewing: bool) -> str:
        self._heartbeat(action.record)
        started = self.clock.monotonic()
        try:
            if isinstance(action, election.Create):
                version = self.kube.create_lease(action.record, self._timeout())
            else:
                version = self.kube.replace_lease(action.record, action.version, self._timeout())
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
            self.kube.heartbeat(micro_time(record.renew_time), self._timeout())
        except (ApiUnavailable, Conflict) as error:
            log.debug("heartbeat: %s", error)

    # ---- BIND ------------------------------------------------------------------------------

    def _reconcile_bind(self, leading: bool, pods: list[Peer]) -> bool:
        """Make named match the election; True when this round promoted us."""
        local = self.local
        if leading:
            self.run.set_valid_until(self.state.leadership.valid_until(self.timing))
            if local.state.role != PRIMARY:
                return self._promote(pods)
            local.serve_as_primary(pods, self._leading)
            return False
        self.run.set_valid_until(0.0)
        leader_ip = self._leader_ip(pods)
        if local.state.role != PRIMARY:
            local.follow(pods, leader_ip)
        elif local.demote(pods, leader_ip):
            self._label(self.settings.pod_name, SECONDARY)
            self._event("Demoted", f"{self.settings.pod_name} is a secondary again")
            log.info("demoted: following %s", leader_ip or "nobody yet")
        return False

    def _leader_ip(self, pods: list[Peer]) -> str | None:
        """Where to transfer from: the Lease holder's pod, or where it was (peers.followed_address)."""
        address, self.state.leader_seen = peers.followed_address(
            pods, election.holder(self.state.observation), self.state.leader_seen
        )
        return address

    def _promote(self, pods: list[Peer]) -> bool:
        """Become primary: relabel others, promote BIND, then label self (in that order)."""
        # Serials peers reported just now beat the ones they published a round ago.
        pods = [self.state.live_peers.get(peer.name, peer) for peer in pods]
        for fix in peers.label_fixes(pods, self.settings.pod_name, leading=True):
            if fix.pod != self.settings.pod_name:
                self._label(fix.pod, fix.role)
        try:
            self.local.promote(pods, self._leading)
        except PromotionFailed as error:
            log.error("promotion failed: %s; giving the Lease up", error)
            self._event("PromotionFailed", str(error), warning=True)
            self.local.demote(pods, None)
            self._give_up_lease()
            # Stand aside for a lease duration, so that another pod gets its chance.
            self.state.ineligible_until = self.clock.monotonic() + self.timing.lease_duration
            return False
        self._label(self.settings.pod_name, PRIMARY)
        self._event("Promoted", f"{self.settings.pod_name} is now the primary of every zone")
        log.info("promoted: %s is primary", self.settings.pod_name)
        return True

    # ---- labels, status, events -------------------------------------------------------------

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
        if status == self.state.published:
            return
        try:
            self.kube.publish_status(status, self._timeout())
            self.state.published = status
        except (ApiUnavailable, Conflict) as error:
            log.warning("publish status: %s", error)

    def _event(self, reason: str, message: str, *, warning: bool = False) -> None:
        self.kube.event(reason, message, warning=warning, timeout=self._timeout())

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
        """Leave for good: stop taking writes, let the peers catch up, then hand the Lease over."""
        self.state.released = True
        # Withdraw first: no peer should wait for us once the Lease is free.
        self._publish(Status(healthy=False, serials=dict(self.local.state.last_serials)))
        if self.local.state.role == PRIMARY:
            self.local.fence(reason)
            self.local.await_replication(self.state.pods, HANDOVER_WAIT)
        self._give_up_lease()
        self.run.mark_released()
        self._label(self.settings.pod_name, SECONDARY)
        self.metrics.set("bind_ha_is_leader", 0)
        log.info("released the Lease: %s", reason)

    # ---- running -----------------------------------------------------------------------------

    def _since_renew(self) -> float:
        renewed = self.state.leadership.renewed_at
        return -1.0 if renewed is None else self.clock.monotonic() - renewed

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
        return max(delay, 0.02)

    def run_forever(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
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
                delay = self.next_delay()
                log.debug("round: %s; next in %.2fs", summary, delay)
                self.wake.wait(delay)
        finally:
            if not self.state.released:
                self.release("agent stopping")
