"""What an agent does about the operator's requests (pure: snapshots in, a plan out)."""

from __future__ import annotations

import dataclasses
import datetime

from bind_ha import requests, steering
from bind_ha.election import LeaseRecord
from bind_ha.peers import Peer, Status
from bind_ha.requests import Answer, Failover, Keys, Pause, Requests, Reseed, Switchover
from bind_ha.steering import GiveUp, Hand, HandOn, KeepWaiting, Situation, Switching, TakeOver

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
LATER = NOW + datetime.timedelta(seconds=60)
SERIALS = {"dyn.test": 1005, "example.test": 1}


def peer(name: str, serials: dict[str, int] | None = SERIALS, *, healthy: bool = True, **kw: object) -> Peer:
    status = None if serials is None else Status(healthy=healthy, serials=serials)
    fields: dict[str, object] = {"uid": f"uid-{name}", "ip": "10.0.0.1", "role": None, "status": status}
    fields.update(kw)
    return Peer(name=name, **fields)  # type: ignore[arg-type]


def switchover(to: str = "", *, deadline: datetime.datetime = LATER) -> Switchover:
    return Switchover(id="switch-0001", by="alice", at=NOW, deadline=deadline, to=to)


def failover(to: str, *, force: bool = False, deadline: datetime.datetime = LATER) -> Failover:
    return Failover(id="fail-0001", by="alice", at=NOW, deadline=deadline, to=to, force=force)


PODS = (peer("p-0"), peer("p-1"), peer("p-2"))


def leader(**changes: object) -> Situation:
    """p-0 holds the Lease and serves; every pod in step."""
    base = Situation(
        me="p-0",
        leading=True,
        serving=True,
        held_by_other=False,
        requests=Requests(),
        pods=PODS,
        mine=Status(healthy=True, serials=SERIALS),
        dynamic=frozenset({"dyn.test"}),
        with_data=frozenset({"dyn.test"}),
        served=frozenset(SERIALS),
        wall_now=NOW,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def follower(me: str = "p-1", *, held: bool = True, **changes: object) -> Situation:
    return leader(me=me, leading=False, serving=False, held_by_other=held, **changes)


def only_reply(plan: steering.Plan) -> Answer:
    assert len(plan.replies) == 1, plan
    return plan.replies[0].answer


# ---- pause ------------------------------------------------------------------------------------------

PAUSE = Pause(id="pause-0001", by="alice", at=NOW, reason="kernel upgrade")


def test_the_leader_acknowledges_a_pause_once_and_keeps_it_on_the_lease() -> None:
    plan = steering.decide(leader(requests=Requests(pause=PAUSE, paused=True)))
    found = only_reply(plan)
    assert (found.kind, found.id, found.outcome) == ("pause", "pause-0001", "done")
    assert "p-0 stays the primary" in found.reason
    assert plan.replies[0].remove is False
    assert plan.replies[0].event[0] == "Paused"
    edits = steering.edits(plan.replies, plan.resumed, Keys())
    assert "bind-ha.io/paused" not in edits and edits["bind-ha.io/answer-pause"]
    answered = Requests(pause=PAUSE, paused=True, answers={"pause": found})
    assert steering.decide(leader(requests=answered)).replies == ()


def test_while_paused_no_pod_takes_the_lease_but_the_holder_keeps_it() -> None:
    paused = Requests(pause=PAUSE, paused=True)
    assert steering.decide(follower(held=False, requests=paused)).take_gate is not None
    assert "kernel upgrade" in (steering.decide(follower(requests=paused)).take_gate or "")
    assert not steering.may_step_down(paused)
    assert steering.may_step_down(Requests())
    assert steering.decide(follower(held=False)).take_gate is None


def test_a_malformed_pause_still_pauses() -> None:
    assert steering.decide(follower(held=False, requests=Requests(paused=True))).take_gate is not None


def test_followers_leave_the_pause_to_the_holder_but_answer_when_nobody_holds_it() -> None:
    paused = Requests(pause=PAUSE, paused=True)
    assert steering.decide(follower(requests=paused)).replies == ()
    found = only_reply(steering.decide(follower(held=False, requests=paused)))
    assert "stays without one until resume or a failover" in found.reason


def test_resume_is_seen_from_the_answer_left_behind() -> None:
    answered = steering.answer(leader(), PAUSE, "done", "paused")
    plan = steering.decide(leader(requests=Requests(answers={"pause": answered})))
    assert plan.resumed == steering.Resumed("pause-0001")
    assert steering.edits(plan.replies, plan.resumed, Keys()) == {"bind-ha.io/answer-pause": None}


# ---- switchover ------------------------------------------------------------------------------------


def test_a_switchover_to_a_named_healthy_pod_starts() -> None:
    plan = steering.decide(leader(requests=Requests(switchover=switchover("p-2"))))
    assert plan.replies == ()
    assert plan.switchover is not None and plan.switchover.target.name == "p-2"


def test_without_a_target_the_most_up_to_date_pod_is_chosen() -> None:
    pods = (peer("p-0"), peer("p-1", {"dyn.test": 1001, "example.test": 1}), peer("p-2"))
    plan = steering.decide(leader(pods=pods, requests=Requests(switchover=switchover())))
    assert plan.switchover is not None and plan.switchover.target.name == "p-2"


def test_a_switchover_is_refused_with_the_reason() -> None:
    cases = {
        "p-9": (PODS, "there is no pod p-9 in this release"),
        "p-1": ((peer("p-0"), peer("p-1", healthy=False)), "p-1's agent reports itself unhealthy"),
        "p-2": ((peer("p-0"), peer("p-2", {"example.test": 1})), "p-2 has no copy of zone(s) dyn.test"),
        "p-0": (PODS, "p-0 is already the primary"),
    }
    for target, (pods, reason) in cases.items():
        found = only_reply(
            steering.decide(leader(pods=pods, requests=Requests(switchover=switchover(target))))
        )
        assert (found.outcome, found.reason) == ("refused", reason)
    deleting = (peer("p-0"), peer("p-1", deleting=True))
    found = only_reply(steering.decide(leader(pods=deleting, requests=Requests(switchover=switchover()))))
    assert found.reason == "no other pod is healthy and has a copy of every zone"


def test_a_switchover_without_a_primary_is_refused_by_anyone_and_left_to_a_live_holder() -> None:
    asked = Requests(switchover=switchover("p-2"))
    assert steering.decide(follower(requests=asked)).replies == ()
    found = only_reply(steering.decide(follower(held=False, requests=asked)))
    assert found.outcome == "refused" and "bind-ha failover --to p-2" in found.reason
    found = only_reply(steering.decide(leader(serving=False, requests=asked)))
    assert found.outcome == "refused" and "does not serve every zone" in found.reason


def test_an_expired_switchover_is_answered_expired() -> None:
    asked = Requests(switchover=switchover("p-2", deadline=NOW))
    found = only_reply(steering.decide(leader(requests=asked)))
    assert found.outcome == "expired"
    assert steering.decide(follower(requests=asked)).replies == ()


def test_a_switchover_in_progress_or_already_answered_is_not_judged_again() -> None:
    asked = Requests(switchover=switchover("p-2"))
    assert steering.decide(leader(requests=asked, busy="switch-0001")).switchover is None
    plan = steering.decide(leader(requests=asked, pending=frozenset({("switchover", "switch-0001")})))
    assert plan.switchover is None and plan.replies == ()


def test_the_pre_check_refusal_says_how_far_behind_the_target_is() -> None:
    text = steering.not_in_step("p-2", SERIALS, Status(True, {"dyn.test": 1002}), 1.0)
    assert text == "p-2 is not in step with the primary within 1s: dyn.test 3 behind, example.test missing"
    assert "did not answer" in steering.not_in_step("p-2", SERIALS, None, 1.0)


def switching() -> Switching:
    return Switching(request=switchover("p-2"), target=peer("p-2"), frozen_at=100.0, give_up_at=105.0)


def test_a_switchover_hands_over_once_the_target_is_in_step() -> None:
    step = steering.switch_step(switching(), leader(), in_step=True, now=100.4)
    assert isinstance(step, Hand)
    assert step.reply.answer.outcome == "done" and step.reply.answer.seconds is not None
    assert abs(step.reply.answer.seconds - 0.4) < 1e-9
    assert "writes were refused for 0.40s" in step.reply.answer.reason


def test_a_switchover_waits_then_gives_up_and_thaws() -> None:
    assert isinstance(steering.switch_step(switching(), leader(), in_step=False, now=104.0), KeepWaiting)
    step = steering.switch_step(switching(), leader(), in_step=False, now=105.0)
    assert isinstance(step, GiveUp) and step.reply.answer.outcome == "failed"
    assert "did not reach the primary's serials" in step.reply.answer.reason
    gone = leader(pods=(peer("p-0"), peer("p-2", deleting=True)))
    step = steering.switch_step(switching(), gone, in_step=False, now=101.0)
    assert isinstance(step, GiveUp) and "p-2 left" in step.reply.answer.reason
    recreated = leader(pods=(peer("p-0"), peer("p-2", uid="other")))
    assert isinstance(steering.switch_step(switching(), recreated, in_step=False, now=101.0), GiveUp)
    lost = steering.switch_step(switching(), leader(leading=False), in_step=True, now=101.0)
    assert isinstance(lost, GiveUp) and "lost the Lease" in lost.reply.answer.reason


# ---- failover --------------------------------------------------------------------------------------


def test_a_healthy_primary_refuses_a_failover_and_points_to_switchover() -> None:
    found = only_reply(steering.decide(leader(requests=Requests(failover=failover("p-1")))))
    assert found.outcome == "refused" and "bind-ha switchover --to p-1" in found.reason


def test_the_target_takes_the_lease_when_nobody_holds_it_even_while_paused() -> None:
    asked = Requests(failover=failover("p-1"), pause=PAUSE, paused=True)
    plan = steering.decide(follower("p-1", held=False, requests=asked))
    assert isinstance(plan.failover, TakeOver) and plan.failover.losses == ()
    assert plan.take_gate is None  # the failover lifts the pause for this pod only
    other = steering.decide(follower("p-2", held=False, requests=asked))
    assert other.failover is None and other.take_gate is not None
    assert [reply.answer.kind for reply in other.replies] == ["pause"]  # the failover is p-1's to answer


def test_a_target_that_lacks_data_refuses_without_force_and_says_what_force_discards() -> None:
    pods = (peer("p-0", {"dyn.test": 1009, "example.test": 1}), peer("p-1", {"example.test": 1}), peer("p-2"))
    mine = Status(healthy=True, serials={"example.test": 1})
    asked = Requests(failover=failover("p-1"))
    situation = follower("p-1", held=False, pods=pods, mine=mine, missing=(), requests=asked)
    found = only_reply(steering.decide(situation))
    assert found.outcome == "refused"
    assert "dyn.test: p-1 has no copy; p-0 has serial 1009" in found.reason and "--force" in found.reason
    forced = dataclasses.replace(situation, requests=Requests(failover=failover("p-1", force=True)))
    plan = steering.decide(forced)
    assert isinstance(plan.failover, TakeOver)
    assert plan.failover.losses == ("dyn.test: p-1 has no copy; p-0 has serial 1009",)
    assert plan.failover.reseed == frozenset({"dyn.test"})


def test_zones_no_pod_has_any_more_are_reported_and_reseeded_with_force() -> None:
    pods = (peer("p-1", {"example.test": 1}),)
    situation = follower(
        "p-1",
        held=False,
        pods=pods,
        mine=Status(True, {"example.test": 1}),
        missing=("dyn.test",),
        requests=Requests(failover=failover("p-1", force=True)),
    )
    plan = steering.decide(situation)
    assert isinstance(plan.failover, TakeOver)
    assert plan.failover.losses == (
        "dyn.test: held data and no pod has a copy: it is seeded again from its source",
    )
    assert plan.failover.reseed == frozenset({"dyn.test"})


def test_the_target_answers_done_with_what_it_discarded_once_it_serves() -> None:
    asked = Requests(failover=failover("p-1", force=True))
    situation = follower("p-1", requests=asked)
    promoted = dataclasses.replace(
        situation,
        leading=True,
        serving=True,
        held_by_other=False,
        took_over=("fail-0001", ("dyn.test: x"), 2.5),
    )
    found = only_reply(steering.decide(promoted))
    assert found.outcome == "done" and found.seconds == 2.5
    assert steering.decide(dataclasses.replace(promoted, serving=False)).replies == ()


def test_a_failed_promotion_is_answered_failed() -> None:
    asked = Requests(failover=failover("p-1"))
    found = only_reply(
        steering.decide(follower("p-1", held=False, requests=asked, failed=("fail-0001", "boom")))
    )
    assert found.outcome == "failed" and "boom" in found.reason


def test_a_holder_that_cannot_serve_hands_the_lease_to_the_failover_target() -> None:
    asked = Requests(failover=failover("p-2"), pause=PAUSE, paused=True)
    plan = steering.decide(leader(serving=False, requests=asked))
    assert isinstance(plan.failover, HandOn) and plan.failover.target.name == "p-2"


def test_failover_to_a_pod_that_does_not_exist_or_past_its_deadline() -> None:
    found = only_reply(steering.decide(follower(held=False, requests=Requests(failover=failover("p-9")))))
    assert found.reason == "there is no pod p-9 in this release"
    late = Requests(failover=failover("p-1", deadline=NOW))
    assert only_reply(steering.decide(follower("p-2", held=False, requests=late))).outcome == "expired"
    assert (
        steering.decide(follower("p-1", held=False, requests=Requests(failover=failover("p-2")))).replies
        == ()
    )


# ---- reseed ----------------------------------------------------------------------------------------


def test_a_reseed_is_answered_once_the_primary_serves_every_zone() -> None:
    asked = Requests(reseed=Reseed(("dyn.test",)))
    found = only_reply(steering.decide(leader(requests=asked)))
    assert (found.outcome, found.id) == ("done", Reseed(("dyn.test",)).id)
    assert steering.decide(leader(requests=asked, served=frozenset({"example.test"}))).replies == ()
    assert steering.decide(follower(held=False, requests=asked)).replies == ()  # the next primary answers
    plan = steering.decide(leader(requests=asked))
    assert steering.edits(plan.replies, None, Keys())["bind-ha.io/reseed"] is None


def test_a_reseed_of_a_zone_that_is_not_dynamic_is_refused() -> None:
    found = only_reply(
        steering.decide(leader(requests=Requests(reseed=Reseed(("example.test", "dyn.test")))))
    )
    assert found.outcome == "refused" and "example.test" in found.reason


# ---- plumbing ----------------------------------------------------------------------------------------


def test_edits_apply_to_annotations_and_answers_parse() -> None:
    plan = steering.decide(leader(requests=Requests(switchover=switchover("p-0"))))
    changed = steering.apply_edits(
        {"bind-ha.io/switchover": "x", "other": "kept"}, steering.edits(plan.replies, plan.resumed, Keys())
    )
    assert "bind-ha.io/switchover" not in changed and changed["other"] == "kept"
    parsed = requests.read(changed)
    assert parsed.answers["switchover"].outcome == "refused" and parsed.problems == ()
    assert plan.replies[0].event[0] == "SwitchoverRefused"


def test_the_outbox_keeps_one_reply_per_request() -> None:
    outbox = steering.Outbox()
    first = steering.Reply(steering.answer(leader(), switchover(), "failed", "a"))
    second = steering.Reply(steering.answer(leader(), switchover(), "failed", "b"))
    outbox.add(first, second)
    assert outbox.keys() == frozenset({("switchover", "switch-0001")})
    assert outbox.take(Requests(switchover=switchover())) == (second,)
    assert outbox.take(Requests(switchover=switchover())) == ()
    outbox.add(first)
    newer = dataclasses.replace(switchover(), id="switch-0002")
    assert outbox.take(Requests(switchover=newer)) == (), "a reply never removes a newer request"


def test_handing_the_lease_over_is_a_transition_to_the_target() -> None:
    record = LeaseRecord(
        holder="p-0/uid-p-0", duration_seconds=10, acquire_time=NOW, renew_time=NOW, transitions=4
    )
    handed = steering.handed(record, to="p-2/uid-p-2", wall_now=LATER, duration=10)
    assert handed == LeaseRecord("p-2/uid-p-2", 10, LATER, LATER, 5)


def test_a_static_zone_is_no_loss_it_is_written_afresh_from_its_source() -> None:
    pods = (peer("p-0", {"dyn.test": 1009, "example.test": 3}), peer("p-1", {"dyn.test": 1009}))
    situation = follower("p-1", held=False, pods=pods, mine=Status(True, {"dyn.test": 1009}))
    assert steering.losses("p-1", {"dyn.test": 1009}, situation) == ((), frozenset())
