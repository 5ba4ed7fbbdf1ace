"""What an agent does about the operator's requests on the Lease (pure).

requests.py parses the annotations; this module decides, from one snapshot of a round
(`Situation`), what this agent does about each request. `decide` returns a `Plan`: the
answers to write (each with its Event, posted once the write landed), a switchover to
start, a failover to carry out (take the Lease, or hand it on), and whether this pod may
take an acquirable Lease at all. The agent does the I/O; nothing here reads a clock.

Who acts, so that every request is answered exactly once:
- the pod that holds a live Lease answers pauses, resumes, switchovers, reseeds, and a
  failover (done when it is the target, refused when it is a healthy primary, handed on
  to the target when its own named cannot serve);
- with no live holder, the pod a failover names takes the Lease (or refuses, saying what
  it lacks); any pod answers what no pod can honour: a request past its deadline, a
  target that is not a pod of the release, a switchover with nobody to hand over from.
  Answers are Lease writes carrying the resourceVersion: when several pods answer, one
  write lands and the others get 409 and see the answer on their next read.

While automation is paused (`bind-ha.io/paused`) no pod takes an acquirable Lease on its
own (`take_gate`) and the holder does not step down on its own: it keeps renewing while
it can. A paused release whose primary dies or is deleted stays without a primary until
`bind-ha resume` or `bind-ha failover --to POD`. Switchovers and failovers are operators'
acts, not automation: they are honoured while paused.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from bind_ha import requests
from bind_ha.election import LeaseRecord
from bind_ha.peers import SERIAL_SPACE, Peer, Status, behind_others, serial_newer
from bind_ha.requests import Answer, Failover, Keys, Requests, Switchover

PRECHECK_SECONDS = 1.0  # a target must reach our serials this fast, before writes are frozen


@dataclass(frozen=True)
class Situation:
    """One round's view, as the agent saw it."""

    me: str  # this pod's name
    leading: bool  # holds the Lease and renewed it within the renew deadline
    serving: bool  # leading, promoted, and its named answers every zone
    held_by_other: bool  # another pod holds a Lease that has not expired
    requests: Requests
    pods: tuple[Peer, ...]  # the release's pods, this one included
    mine: Status  # this pod's serials now
    missing: tuple[str, ...] = ()  # dynamic zones that held data and that this pod has no copy of
    with_data: frozenset[str] = frozenset()  # dynamic zones the Lease lists as having held data
    dynamic: frozenset[str] = frozenset()  # this release's dynamic zones
    served: frozenset[str] = frozenset()  # zones this pod serves from data, as primary
    wall_now: datetime.datetime = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    busy: str | None = None  # id of the switchover this pod is carrying out
    failed: tuple[str, str] | None = None  # (failover id, why) this pod's promotion for it failed
    # (failover id, what it discarded, seconds it took) once this pod took over for a failover
    took_over: tuple[str, tuple[str, ...], float] | None = None
    pending: frozenset[tuple[str, str]] = frozenset()  # (kind, id) answered but not yet written


@dataclass(frozen=True)
class Reply:
    """An answer to write, with the request it settles and the Event that reports it."""

    answer: Answer
    remove: bool = True  # remove the request in the same write (a pause stays)
    warning: bool = False

    @property
    def event(self) -> tuple[str, str, bool]:
        return event_reason(self.answer), describe(self.answer), self.warning


@dataclass(frozen=True)
class Resumed:
    """The pause is gone and its answer still there: clear the answer, post `Resumed`."""

    pause_id: str


@dataclass(frozen=True)
class StartSwitchover:
    request: Switchover
    target: Peer


@dataclass(frozen=True)
class TakeOver:
    """Take the Lease for a failover that names this pod, bypassing pause and deference."""

    request: Failover
    losses: tuple[str, ...]  # what promoting this pod discards (only with force)
    reseed: frozenset[str]  # zones no copy of which is here: to be seeded again (only with force)


@dataclass(frozen=True)
class HandOn:
    """The holder cannot serve: give the Lease to a failover's target (it answers once promoted)."""

    request: Failover
    target: Peer
    reseed: frozenset[str]


@dataclass(frozen=True)
class Plan:
    replies: tuple[Reply, ...] = ()
    resumed: Resumed | None = None
    switchover: StartSwitchover | None = None
    failover: TakeOver | HandOn | None = None
    take_gate: str | None = None  # why this pod may not take an acquirable Lease now


# ---- answers and Events ------------------------------------------------------------------------


def answer(
    situation: Situation,
    request: requests.Request,
    outcome: str,
    reason: str,
    seconds: float | None = None,
) -> Answer:
    return Answer(
        id=request.id,
        kind=requests.kind_of(request),
        outcome=outcome,
        reason=reason[: requests.MAX_TEXT],
        by=situation.me,
        at=situation.wall_now,
        seconds=None if seconds is None else min(max(seconds, 0.0), requests.MAX_SECONDS),
    )


def event_reason(found: Answer) -> str:
    """`Paused` for an acknowledged pause, else e.g. `SwitchoverRefused`."""
    if found.kind == requests.PAUSE and found.outcome == "done":
        return "Paused"
    return requests.event_reason(found.kind, found.outcome)


def describe(found: Answer) -> str:
    took = f" in {found.seconds:.2f}s" if found.seconds is not None else ""
    return f"{found.kind} {found.id} {found.outcome}{took}: {found.reason}"


def edits(replies: Iterable[Reply], resumed: Resumed | None, keys: Keys) -> dict[str, str | None]:
    """The annotation changes that write these answers (None removes), for a Lease write or patch."""
    changes: dict[str, str | None] = {}
    for reply in replies:
        changes[keys.answer(reply.answer.kind)] = requests.format_answer(reply.answer)
        if reply.remove:
            changes[keys.request(reply.answer.kind)] = None
    if resumed is not None:
        changes[keys.answer(requests.PAUSE)] = None
    return changes


def apply_edits(annotations: Mapping[str, str], changes: Mapping[str, str | None]) -> dict[str, str]:
    updated = dict(annotations)
    for key, value in changes.items():
        if value is None:
            updated.pop(key, None)
        else:
            updated[key] = value
    return updated


# ---- the decision ---------------------------------------------------------------------------------


def decide(situation: Situation) -> Plan:
    """Everything this pod does about the requests this round."""
    situation = _without_pending(situation)
    found = situation.requests
    replies: list[Reply] = []
    pause_reply, resumed = _pause(situation)
    if pause_reply is not None:
        replies.append(pause_reply)
    switch_reply, start = _switchover(situation)
    if switch_reply is not None:
        replies.append(switch_reply)
    failover_reply, failover = _failover(situation)
    if failover_reply is not None:
        replies.append(failover_reply)
    reseed_reply = _reseed(situation)
    if reseed_reply is not None:
        replies.append(reseed_reply)
    gate = None
    if found.paused and not isinstance(failover, TakeOver):
        gate = paused_reason(found)
    return Plan(tuple(replies), resumed, start, failover, gate)


def _without_pending(situation: Situation) -> Situation:
    """Requests this pod answered already (the write is still to land) are not judged again."""
    if not situation.pending:
        return situation
    found = situation.requests

    def kept(request: requests.Request | None) -> bool:
        return request is not None and (requests.kind_of(request), request.id) not in situation.pending

    trimmed = replace(
        found,
        switchover=found.switchover if kept(found.switchover) else None,
        failover=found.failover if kept(found.failover) else None,
        reseed=found.reseed if kept(found.reseed) else None,
    )
    return replace(situation, requests=trimmed)


def answerer(situation: Situation) -> bool:
    """Whether this pod answers what the holder answers: it leads, or nobody does."""
    return situation.leading or not situation.held_by_other


def paused_reason(found: Requests) -> str:
    pause = found.pause
    who = f" by {pause.by}" if pause is not None and pause.by else ""
    why = f" ({pause.reason})" if pause is not None and pause.reason else ""
    return (
        f"automation paused{who}{why}: not taking the Lease on its own "
        "(`bind-ha resume`, or `bind-ha failover --to POD`)"
    )


def may_step_down(found: Requests) -> bool:
    """A holder whose named cannot serve steps down on its own only while automation runs."""
    return not found.paused


# ---- pause / resume ----------------------------------------------------------------------------------


def _pause(situation: Situation) -> tuple[Reply | None, Resumed | None]:
    found = situation.requests
    last = found.answers.get(requests.PAUSE)
    if not answerer(situation):
        return None, None
    if found.pause is None:
        if not found.paused and last is not None and last.outcome == "done":
            return None, Resumed(last.id)
        return None, None
    if last is not None and last.id == found.pause.id:
        return None, None
    holder = (
        f"{situation.me} stays the primary and keeps renewing the Lease"
        if situation.leading
        else "the release has no primary now and stays without one until resume or a failover"
    )
    reason = f"automation paused: no pod takes the Lease or changes role on its own; {holder}"
    return Reply(answer(situation, found.pause, "done", reason), remove=False), None


# ---- switchover ------------------------------------------------------------------------------------


def _expired_reply(situation: Situation, request: Switchover | Failover) -> Reply:
    kind = requests.kind_of(request)
    reason = f"deadline {requests.timestamp(request.deadline)} passed before the {kind} could be carried out"
    return Reply(answer(situation, request, "expired", reason), warning=True)


def _refused(situation: Situation, request: requests.Request, reason: str) -> Reply:
    return Reply(answer(situation, request, "refused", reason), warning=True)


def _switchover(situation: Situation) -> tuple[Reply | None, StartSwitchover | None]:
    request = situation.requests.switchover
    if request is None or situation.busy == request.id:
        return None, None  # nothing asked, or this pod is carrying it out (switch_step decides)
    if requests.expired(request, situation.wall_now):
        return (_expired_reply(situation, request), None) if answerer(situation) else (None, None)
    if not situation.leading and situation.held_by_other:
        return None, None  # the holder answers
    refusal = _switchover_refusal(situation, request)
    target = None
    if refusal is None:
        target, refusal = switchover_target(situation, request.to)
    if target is None:
        return _refused(situation, request, refusal or "no target"), None
    return None, StartSwitchover(request, target)


def _switchover_refusal(situation: Situation, request: Switchover) -> str | None:
    """Why this pod (the holder, or anyone when nobody holds the Lease) cannot hand over."""
    failover = f"use `bind-ha failover --to {request.to or 'POD'}`"
    if not situation.leading:
        return f"no primary holds the Lease: there is nothing to hand over; {failover}"
    if not situation.serving:
        return f"{situation.me} holds the Lease but does not serve every zone as primary: {failover}"
    if request.to == situation.me:
        return f"{situation.me} is already the primary"
    return None


def _unfit(peer: Peer | None, name: str) -> str | None:
    if peer is None:
        return f"there is no pod {name} in this release"
    if peer.deleting:
        return f"{name} is being deleted"
    if not peer.ip:
        return f"{name} has no IP yet"
    if peer.status is None:
        return f"{name}'s agent publishes no status"
    if not peer.status.healthy:
        return f"{name}'s agent reports itself unhealthy"
    return None


def _lacking(peer: Peer, zones: Iterable[str]) -> list[str]:
    theirs = peer.status.serials if peer.status else {}
    return sorted(zone for zone in zones if zone not in theirs)


def lag(mine: int, theirs: int) -> int:
    """How far theirs is behind mine, in RFC 1982 serial arithmetic (0 when not behind)."""
    return (mine - theirs) % SERIAL_SPACE if serial_newer(mine, theirs) else 0


def _distance(peer: Peer, mine: Status) -> tuple[int, int]:
    theirs = peer.status.serials if peer.status else {}
    behind = [lag(serial, theirs[zone]) for zone, serial in mine.serials.items() if zone in theirs]
    return sum(1 for value in behind if value), sum(behind)


def switchover_target(situation: Situation, wanted: str) -> tuple[Peer | None, str | None]:
    """The pod to hand over to (the named one, or the most up-to-date fit one), or why none."""
    others = [peer for peer in situation.pods if peer.name != situation.me]
    if wanted:
        peer = next((peer for peer in others if peer.name == wanted), None)
        unfit = _unfit(peer, wanted)
        if unfit is not None:
            return None, unfit
        assert peer is not None
        lacking = _lacking(peer, situation.mine.serials)
        if lacking:
            return None, f"{wanted} has no copy of zone(s) {', '.join(lacking)}"
        return peer, None
    fit = [
        peer
        for peer in others
        if _unfit(peer, peer.name) is None and not _lacking(peer, situation.mine.serials)
    ]
    if not fit:
        return None, "no other pod is healthy and has a copy of every zone"
    return min(fit, key=lambda peer: (_distance(peer, situation.mine), peer.name)), None


def not_in_step(target: str, mine: Mapping[str, int], theirs: Status | None, seconds: float) -> str:
    """The refusal when a target did not reach our serials within the pre-check."""
    if theirs is None:
        return f"{target} is not in step with the primary: its named did not answer"
    behind = [
        f"{zone} {'missing' if zone not in theirs.serials else f'{lag(serial, theirs.serials[zone])} behind'}"
        for zone, serial in sorted(mine.items())
        if zone not in theirs.serials or lag(serial, theirs.serials[zone])
    ]
    detail = ", ".join(behind) or "it did not answer every zone in time"
    return f"{target} is not in step with the primary within {seconds:g}s: {detail}"


@dataclass(frozen=True)
class Switching:
    """A switchover this pod (the primary) is carrying out: writes frozen since frozen_at."""

    request: Switchover
    target: Peer
    frozen_at: float  # monotonic
    give_up_at: float  # monotonic: thaw and answer failed if the target is not in step by then


@dataclass(frozen=True)
class Hand:
    """The target serves our last serials: hand it the Lease with this answer."""

    reply: Reply


@dataclass(frozen=True)
class KeepWaiting:
    pass


@dataclass(frozen=True)
class GiveUp:
    """Thaw and stay primary; the answer says why."""

    reply: Reply


def switch_step(
    switching: Switching,
    situation: Situation,
    *,
    in_step: bool,
    now: float,
) -> Hand | KeepWaiting | GiveUp:
    """One round of a switchover in progress, after waiting for the target once more."""
    request, target = switching.request, switching.target
    frozen = now - switching.frozen_at
    if not situation.leading:
        return GiveUp(
            Reply(
                answer(situation, request, "failed", f"{situation.me} lost the Lease during the switchover"),
                warning=True,
            )
        )
    if in_step:
        reason = (
            f"{situation.me} handed the Lease to {target.name} once it served every zone at the "
            f"primary's last serial; writes were refused for {frozen:.2f}s until then, and "
            f"{target.name} takes them once promoted"
        )
        return Hand(Reply(answer(situation, request, "done", reason, frozen)))
    current = next((peer for peer in situation.pods if peer.name == target.name), None)
    gone = current is None or current.deleting or current.identity != target.identity
    if gone or now >= switching.give_up_at or requests.expired(request, situation.wall_now):
        why = (
            f"{target.name} left"
            if gone
            else f"{target.name} did not reach the primary's serials in {frozen:.1f}s"
        )
        reason = f"{why}: {situation.me} thawed and stays the primary"
        return GiveUp(Reply(answer(situation, request, "failed", reason, frozen), warning=True))
    return KeepWaiting()


# ---- failover --------------------------------------------------------------------------------------


def losses(
    target: str, serials: Mapping[str, int], situation: Situation
) -> tuple[tuple[str, ...], frozenset[str]]:
    """What promoting target (with these serials) discards: dynamic zones where another pod
    published a newer serial or target has no copy, and zones that held data of which no pod
    has a copy (they would be seeded from their source). Returns the descriptions and the zones that
    must be seeded again."""
    others = [peer for peer in situation.pods if peer.name != target and peer.status is not None]
    found: list[str] = []
    anywhere = {zone for peer in others if peer.status for zone in peer.status.serials}
    zones = sorted(anywhere & situation.dynamic)  # a static zone is written afresh from its source
    published = {peer.name: peer.status.serials for peer in others if peer.status}
    found.extend(behind_others(target, serials, published, zones))
    reseed = frozenset(zone for zone in situation.with_data & situation.dynamic if zone not in serials)
    for zone in sorted(reseed - set(zones)):
        found.append(f"{zone}: held data and no pod has a copy: it is seeded again from its source")
    return tuple(found), reseed


def _failover(situation: Situation) -> tuple[Reply | None, TakeOver | HandOn | None]:
    request = situation.requests.failover
    if request is None or (not situation.leading and situation.held_by_other):
        return None, None  # nothing asked, or the holder answers
    target = next((peer for peer in situation.pods if peer.name == request.to), None)
    if requests.expired(request, situation.wall_now):
        return _expired_reply(situation, request), None
    if target is None:
        return _refused(situation, request, f"there is no pod {request.to} in this release"), None
    if situation.leading:
        return _failover_by_holder(situation, request, target)
    if request.to != situation.me:
        return None, None  # the target acts
    return _failover_by_target(situation, request)


def _failover_by_holder(
    situation: Situation, request: Failover, target: Peer
) -> tuple[Reply | None, HandOn | None]:
    if request.to == situation.me:
        return _failover_to_holder(situation, request), None
    refusal = (
        f"{situation.me} is a healthy primary: use `bind-ha switchover --to {request.to}` "
        "(it works while automation is paused too)"
        if situation.serving
        else _unfit(target, request.to)
    )
    found: tuple[str, ...] = ()
    reseed: frozenset[str] = frozenset()
    if refusal is None and target.status is not None:
        found, reseed = losses(request.to, target.status.serials, situation)
        if found and not request.force:
            refusal = _lacks(request.to, found)
    if refusal is not None:
        return _refused(situation, request, refusal), None
    return None, HandOn(request, target, reseed if request.force else frozenset())


def _failover_to_holder(situation: Situation, request: Failover) -> Reply | None:
    """The target holds the Lease (it took it, or was handed it): done once it serves."""
    if not situation.serving:
        return None  # promoting (or about to): answered once it serves
    took = situation.took_over
    if took is not None and took[0] == request.id:
        return failover_done(situation, request, took[1], took[2])
    return Reply(answer(situation, request, "done", f"{situation.me} is the primary"))


def _lacks(target: str, found: Iterable[str]) -> str:
    return (
        f"{target} lacks data other pods had ({'; '.join(found)}); "
        "promote a pod that has it, or pass --force to discard it"
    )


def _failover_by_target(situation: Situation, request: Failover) -> tuple[Reply | None, TakeOver | None]:
    if situation.failed is not None and situation.failed[0] == request.id:
        reply = Reply(
            answer(situation, request, "failed", f"promoting {situation.me} failed: {situation.failed[1]}"),
            warning=True,
        )
        return reply, None
    if not situation.mine.healthy:
        return _refused(situation, request, f"{situation.me}'s named is not healthy"), None
    found, reseed = losses(situation.me, situation.mine.serials, situation)
    reseed = reseed | frozenset(situation.missing)
    if found and not request.force:
        return _refused(situation, request, _lacks(situation.me, found)), None
    return None, TakeOver(request, found, reseed if request.force else frozenset())


def failover_done(situation: Situation, request: Failover, found: Iterable[str], seconds: float) -> Reply:
    """The target's answer once it serves as primary."""
    discarded = list(found)
    reason = f"{situation.me} is the primary"
    if discarded:
        reason += f"; discarded: {'; '.join(discarded)}"
    return Reply(answer(situation, request, "done", reason, seconds), warning=bool(discarded))


# ---- reseed ------------------------------------------------------------------------------------------


def _reseed(situation: Situation) -> Reply | None:
    """The holder answers a reseed once it serves every requested zone; zones that are not
    dynamic zones of this release are refused at once."""
    request = situation.requests.reseed
    if request is None or not answerer(situation):
        return None
    unknown = [zone for zone in request.zones if zone not in situation.dynamic]
    if unknown:
        return _refused(
            situation, request, f"not a dynamic zone of this release: {', '.join(unknown)}; nothing reseeded"
        )
    if not situation.serving or any(zone not in situation.served for zone in request.zones):
        return None  # the next primary seeds the zones it has no copy of, then answers
    return reseed_settled(situation, frozenset())


def reseed_settled(situation: Situation, remaining: frozenset[str]) -> Reply | None:
    """The answer to a reseed once the Lease's notes list none of its zones any more: the
    primary settles a zone in the renewal that records it as served, which may be the one
    just before a promotion's switch (leasenotes.after_renewal)."""
    request = situation.requests.reseed
    if request is None or any(zone in remaining or zone not in situation.dynamic for zone in request.zones):
        return None
    reason = (
        f"{situation.me} serves {', '.join(request.zones)}: a zone no pod had data for was seeded "
        "from its source, one with data kept it (nothing is reseeded over existing records)"
    )
    return Reply(answer(situation, request, "done", reason))


@dataclass
class Outbox:
    """Replies decided but not yet written (a write lost a race): kept until one lands."""

    replies: list[Reply] = field(default_factory=list)

    def add(self, *replies: Reply) -> None:
        for reply in replies:
            self.replies = [
                kept
                for kept in self.replies
                if (kept.answer.kind, kept.answer.id) != (reply.answer.kind, reply.answer.id)
            ] + [reply]

    def keys(self) -> frozenset[tuple[str, str]]:
        return frozenset((reply.answer.kind, reply.answer.id) for reply in self.replies)

    def take(self, found: Requests) -> tuple[Reply, ...]:
        """The replies to write now: only those whose request is still on the Lease as read
        (a reply removes its kind's request: it must never remove a newer one)."""
        current: dict[str, requests.Request | None] = {
            requests.PAUSE: found.pause,
            requests.SWITCHOVER: found.switchover,
            requests.FAILOVER: found.failover,
            requests.RESEED: found.reseed,
        }
        taken = tuple(
            reply
            for reply in self.replies
            if (request := current.get(reply.answer.kind)) is not None and request.id == reply.answer.id
        )
        self.replies = []
        return taken


def handed(record: LeaseRecord, *, to: str, wall_now: datetime.datetime, duration: int) -> LeaseRecord:
    """The Lease record that gives leadership to identity `to` (a switchover, or a failover the
    holder cannot serve itself): a new holder, so a transition, acquired and renewed now.
    The new holder renews it from its next round, as its own."""
    return replace(
        record,
        holder=to,
        duration_seconds=duration,
        acquire_time=wall_now,
        renew_time=wall_now,
        transitions=record.transitions + 1,
    )
