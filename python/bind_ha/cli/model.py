"""What `bind-ha status` sees and how it judges it (pure: no API calls, the time is passed in).

A release is healthy (exit code 0) when exactly one healthy primary exists and every
ready secondary is in step with it:
- the Lease names a holder that is a current pod (same name and UID), and the holder
  renewed it within its renew deadline (a primary past that deadline fences itself:
  it refuses updates) and within the lease duration;
- exactly one pod is labelled primary, and it is that holder, and its agent publishes
  itself healthy;
- every ready pod other than the primary serves, for every zone the primary serves,
  the primary's serial (lag 0 in RFC 1982 serial arithmetic). Each pod publishes its
  serials once a round, so under a stream of updates the snapshots of two pods are taken
  up to a round apart and rarely agree: given an earlier view as well (`assess(...,
  earlier=)`), a secondary also counts as in step when it has since reached the serial the
  same primary had then, or the primary has since reached the serial it was ahead with.
Renewal ages compare the holder's renewTime with this machine's clock: a clock skew
between the two shows up as that much renewal age.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from bind_ha import requests
from bind_ha.peers import PRIMARY, SERIAL_SPACE, Status, serial_newer
from bind_ha.requests import Requests

DEFAULT_RENEW_DEADLINE = 6.0  # settings.ENVIRONMENT's default, for pods that do not say


@dataclass(frozen=True)
class PodView:
    name: str
    uid: str
    node: str | None
    ip: str | None
    role: str | None  # the role label
    ready: bool  # the pod's Ready condition
    deleting: bool
    status: Status | None  # what its agent publishes; None: nothing (or nothing readable)

    @property
    def identity(self) -> str:
        return f"{self.name}/{self.uid}"


@dataclass(frozen=True)
class LeaseView:
    name: str
    holder: str  # "POD/UID", or "" when released
    duration: int
    acquire_time: datetime.datetime | None
    renew_time: datetime.datetime | None
    transitions: int
    version: str
    requests: Requests = field(default_factory=Requests)
    with_data: frozenset[str] = frozenset()  # dynamic zones that held clients' data (leasenotes.py)


@dataclass(frozen=True)
class ReleaseView:
    release: str
    namespace: str
    lease_name: str
    pods: tuple[PodView, ...]
    lease: LeaseView | None
    renew_deadline: float = DEFAULT_RENEW_DEADLINE


@dataclass(frozen=True)
class ZoneState:
    zone: str
    serial: int | None  # None: the pod does not serve (or publish) this zone
    lag: int | None  # how far behind the primary; negative: ahead of it; None: nothing to compare


@dataclass(frozen=True)
class PodReport:
    pod: PodView
    zones: tuple[ZoneState, ...]
    in_step: bool | None  # None when there is no primary to compare with
    holder: bool


@dataclass(frozen=True)
class Assessment:
    primary: PodView | None  # the one healthy primary, when there is one
    pods: tuple[PodReport, ...]
    zones: tuple[str, ...]
    problems: tuple[str, ...]  # each makes the exit code 1
    notes: tuple[str, ...]  # worth knowing, not a failure (a pause, requests, unready pods)
    renew_age: float | None  # seconds since the holder's last renewal, by this machine's clock
    lagging: tuple[str, ...] = ()  # ready secondaries not in step (a later view may clear them)

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def exit_code(self) -> int:
        return 0 if self.healthy else 1


def lag(reference: int, serial: int) -> int:
    """reference - serial in RFC 1982 arithmetic: positive behind, negative ahead."""
    if serial == reference:
        return 0
    if serial_newer(reference, serial):
        return (reference - serial) % SERIAL_SPACE
    return -((serial - reference) % SERIAL_SPACE)


def duration(seconds: float) -> str:
    """A short human duration: 0.8s, 42s, 3m12s, 2h05m, 3d04h."""
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def _holder_pod(view: ReleaseView) -> PodView | None:
    holder = view.lease.holder if view.lease else ""
    return next((pod for pod in view.pods if holder and pod.identity == holder), None)


def _lease_problems(view: ReleaseView, now: datetime.datetime) -> tuple[list[str], float | None]:
    lease = view.lease
    if lease is None:
        return [f"no Lease {view.lease_name}: no agent has taken part in an election yet"], None
    if not lease.holder:
        return [f"the Lease {lease.name} has no holder (released, or never acquired)"], None
    problems = []
    holder_name = lease.holder.split("/", 1)[0]
    if _holder_pod(view) is None:
        again = any(pod.name == holder_name for pod in view.pods)
        problems.append(
            f"the Lease holder {holder_name} is "
            + ("a previous incarnation of that pod (it was recreated)" if again else "not a current pod")
        )
    age = None if lease.renew_time is None else (now - lease.renew_time).total_seconds()
    if age is None:
        problems.append("the Lease has no renewTime")
    elif age > lease.duration:
        problems.append(
            f"the Lease held by {holder_name} expired: last renewed {duration(age)} ago "
            f"(lease duration {lease.duration}s)"
        )
    elif age > view.renew_deadline:
        problems.append(
            f"{holder_name} last renewed the Lease {duration(age)} ago, past its renew deadline "
            f"({view.renew_deadline:g}s): it refuses updates until it renews, or it is gone"
        )
    return problems, age


def _primary_problems(view: ReleaseView, holder: PodView | None) -> list[str]:
    labelled = [pod.name for pod in view.pods if pod.role == PRIMARY]
    if not labelled:
        return ["no pod is labelled primary: updates through the primary Service fail"]
    if len(labelled) > 1:
        return [f"{len(labelled)} pods are labelled primary: {', '.join(labelled)}"]
    if holder is None or labelled[0] != holder.name:
        return [f"{labelled[0]} is labelled primary but does not hold the Lease"]
    return _holder_problems(holder)


def _holder_problems(holder: PodView) -> list[str]:
    if holder.deleting:
        return [f"the primary {holder.name} is being deleted"]
    if holder.status is None:
        return [f"the primary {holder.name}'s agent publishes no status"]
    if not holder.status.healthy:
        return [f"the primary {holder.name}'s agent reports itself unhealthy"]
    return []


def _zone_states(pod: PodView, zones: tuple[str, ...], reference: Status | None) -> tuple[ZoneState, ...]:
    states = []
    for zone in zones:
        serial = pod.status.serials.get(zone) if pod.status else None
        primary = reference.serials.get(zone) if reference else None
        states.append(
            ZoneState(zone, serial, None if serial is None or primary is None else lag(primary, serial))
        )
    return tuple(states)


def _caught_up(zone: str, pod: PodView, now: Status, earlier: tuple[PodView, Status] | None) -> bool:
    """Lagging in this view, in step across two: the pod reached the primary's earlier serial,
    or (ahead of it) the primary reached the pod's earlier serial."""
    if earlier is None:
        return False
    before_pod, before_primary = earlier
    ours, theirs = (pod.status.serials.get(zone) if pod.status else None), now.serials.get(zone)
    ours_before = before_pod.status.serials.get(zone) if before_pod.status else None
    primary_before = before_primary.serials.get(zone)
    if ours is None or theirs is None:
        return False
    if primary_before is not None and lag(primary_before, ours) <= 0 < lag(theirs, ours):
        return True  # behind now, but past where the primary was
    return ours_before is not None and lag(ours_before, theirs) <= 0 and lag(theirs, ours) < 0


def _step_problem(
    pod: PodView,
    states: tuple[ZoneState, ...],
    reference: Status,
    earlier: tuple[PodView, Status] | None = None,
) -> str | None:
    """Why a ready secondary is not in step (states: the primary's zones), or None when it is.
    earlier: the same pod and the same primary's serials in an earlier view, if there is one."""
    reasons = []
    for state in states:
        if state.lag not in (None, 0) and _caught_up(state.zone, pod, reference, earlier):
            continue
        if state.lag is None:
            reasons.append(f"{state.zone} missing")
        elif state.lag > 0:
            reasons.append(f"{state.zone} {state.lag} behind")
        elif state.lag < 0:
            reasons.append(f"{state.zone} {-state.lag} AHEAD of the primary (diverged history?)")
    if not reasons:
        return None
    return f"ready secondary {pod.name} is not in step: {'; '.join(reasons)}"


def _all_zones(view: ReleaseView, reference: Status | None) -> tuple[str, ...]:
    primary_zones = sorted(reference.serials) if reference else []
    others = sorted(
        {zone for pod in view.pods if pod.status for zone in pod.status.serials} - set(primary_zones)
    )
    return tuple(primary_zones + others)


def _earlier(
    earlier: ReleaseView | None, pod: PodView, reference_pod: PodView
) -> tuple[PodView, Status] | None:
    """The pod and the primary's serials in the earlier view, if the same pods were there."""
    if earlier is None:
        return None
    before = {(p.name, p.uid): p for p in earlier.pods}
    pod_before = before.get((pod.name, pod.uid))
    primary_before = before.get((reference_pod.name, reference_pod.uid))
    if pod_before is None or primary_before is None or primary_before.status is None:
        return None
    return pod_before, primary_before.status


def assess(view: ReleaseView, now: datetime.datetime, earlier: ReleaseView | None = None) -> Assessment:
    """Judge a view; with an earlier view, lagging secondaries may count as in step (module doc)."""
    holder = _holder_pod(view)
    problems, age = _lease_problems(view, now)
    problems += _primary_problems(view, holder)
    primary = holder if not problems else None
    # The reference serials: the primary's, or failing that the Lease holder's, if it publishes any.
    reference_pod = primary or (holder if holder is not None and holder.role == PRIMARY else None)
    reference = reference_pod.status if reference_pod is not None else None
    zones = _all_zones(view, reference)
    primary_zones = tuple(sorted(reference.serials)) if reference else ()
    reports, lagging = [], []
    for pod in view.pods:
        states = _zone_states(pod, primary_zones, reference)  # in step means: every zone of the primary
        step = None
        if reference is not None and reference_pod is not None and pod is not reference_pod:
            step = _step_problem(pod, states, reference, _earlier(earlier, pod, reference_pod))
        reports.append(
            PodReport(
                pod=pod,
                zones=_zone_states(pod, zones, reference),
                in_step=None if reference is None else step is None,
                holder=holder is not None and pod is holder,
            )
        )
        if step and pod.ready and not pod.deleting:
            problems.append(step)
            lagging.append(pod.name)
    return Assessment(
        primary=primary,
        pods=tuple(reports),
        zones=zones,
        problems=tuple(problems),
        notes=tuple(notes(view, now)),
        renew_age=age,
        lagging=tuple(lagging),
    )


# ---- notes: what an operator should see, beyond the verdict --------------------------


def pause_note(found: Requests, now: datetime.datetime) -> str | None:
    if not found.paused:
        return None
    pause = found.pause
    if pause is None:
        return "automation PAUSED (the paused annotation is malformed; it still counts as a pause)"
    if pause.at is None:
        return "automation PAUSED (set by hand)"
    reason = f": {pause.reason}" if pause.reason else ""
    ago = duration((now - pause.at).total_seconds())
    return f"automation PAUSED by {pause.by or 'unknown'} {ago} ago{reason}"


def request_notes(found: Requests, now: datetime.datetime) -> list[str]:
    lines = []
    for request in (found.switchover, found.failover):
        if request is None:
            continue
        kind = requests.kind_of(request)
        target = request.to or "the most up-to-date pod"
        force = " (forced)" if isinstance(request, requests.Failover) and request.force else ""
        left = (request.deadline - now).total_seconds()
        when = f"deadline in {duration(left)}" if left > 0 else f"EXPIRED {duration(-left)} ago, unanswered"
        lines.append(f"{kind} to {target}{force} requested by {request.by} (id {request.id}), {when}")
    if found.reseed is not None:
        lines.append(f"reseed of {', '.join(found.reseed.zones)} requested (id {found.reseed.id})")
    for kind, answer in sorted(found.answers.items()):
        took = f" in {answer.seconds:.2f}s" if answer.seconds is not None else ""
        ago = duration((now - answer.at).total_seconds())
        reason = f": {answer.reason}" if answer.reason else ""
        lines.append(
            f"last {kind} answer (id {answer.id}): {answer.outcome} by {answer.by}{took}, {ago} ago{reason}"
        )
    lines += [f"ignored malformed annotation {problem}" for problem in found.problems]
    return lines


def notes(view: ReleaseView, now: datetime.datetime) -> list[str]:
    found = view.lease.requests if view.lease else Requests()
    lines = [line for line in [pause_note(found, now)] if line]
    lines += request_notes(found, now)
    for pod in view.pods:
        if pod.deleting:
            lines.append(f"{pod.name} is being deleted")
        elif not pod.ready:
            lines.append(f"{pod.name} is not ready")
        if pod.status is not None and not pod.status.healthy and pod.role != PRIMARY:
            lines.append(f"{pod.name}'s agent reports itself unhealthy (not a candidate)")
    return lines
