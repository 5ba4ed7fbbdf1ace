"""The request protocol on the Lease: formats round-trip, hostile values are refused (pure)."""

from __future__ import annotations

import datetime
import json

import pytest

from bind_ha import requests
from bind_ha.requests import Answer, Failover, Keys, Pause, RequestError, Reseed, Switchover

AT = datetime.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)
DEADLINE = AT + datetime.timedelta(seconds=60)


def switchover(**overrides: object) -> dict[str, object]:
    document: dict[str, object] = {
        "id": "0123456789abcdef",
        "by": "alice",
        "at": "2026-01-02T03:04:05.000006Z",
        "deadline": "2026-01-02T03:05:05.000006Z",
        "to": "dns-bind-ha-1",
    }
    document.update(overrides)
    return document


@pytest.mark.parametrize(
    "request_",
    [
        Pause(id="0123456789abcdef", by="alice", at=AT, reason="upgrade the nodes"),
        Pause(id="0123456789abcdef", by="", at=None, reason=""),
        Switchover(id="0123456789abcdef", by="alice", at=AT, deadline=DEADLINE, to="dns-bind-ha-1"),
        Switchover(id="0123456789abcdef", by="alice", at=AT, deadline=DEADLINE, to=""),
        Failover(
            id="0123456789abcdef",
            by="system:serviceaccount:dns:ops",
            at=AT,
            deadline=DEADLINE,
            to="p-2",
            force=True,
        ),
        Reseed(zones=("dyn.test", "other.test")),
    ],
    ids=["pause", "pause-without-time", "switchover", "switchover-any", "failover", "reseed"],
)
def test_every_request_round_trips(request_: requests.Request) -> None:
    kind = requests.kind_of(request_)
    assert requests.PARSERS[kind](requests.format_request(request_)) == request_


def test_answer_round_trips_and_names_its_event() -> None:
    answer = Answer(
        id="0123456789abcdef",
        kind="switchover",
        outcome="refused",
        reason="not in step",
        by="p-1",
        at=AT,
        seconds=None,
    )
    assert requests.parse_answer(requests.format_answer(answer)) == answer
    timed = Answer(
        id="reseed-0123456789abcdef", kind="reseed", outcome="done", reason="", by="p-0", at=AT, seconds=1.25
    )
    assert requests.parse_answer(requests.format_answer(timed)) == timed
    assert requests.event_reason("switchover", "refused") == "SwitchoverRefused"


def test_the_formats_are_the_documented_ones() -> None:
    text = requests.format_request(
        Switchover(id="0123456789abcdef", by="alice", at=AT, deadline=DEADLINE, to="p-1")
    )
    assert json.loads(text) == {
        "at": "2026-01-02T03:04:05.000006Z",
        "by": "alice",
        "deadline": "2026-01-02T03:05:05.000006Z",
        "id": "0123456789abcdef",
        "to": "p-1",
    }
    assert requests.format_request(Reseed(zones=("a.test", "b.test"))) == "a.test,b.test"
    keys = Keys("example.org")
    assert keys.request("pause") == "example.org/paused"
    assert keys.request("reseed") == "example.org/reseed"
    assert keys.answer("failover") == "example.org/answer-failover"


def test_a_pause_set_by_hand_is_a_pause() -> None:
    assert requests.parse_pause("true") == Pause(id="manual", by="", at=None, reason="")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"id": "x"', "not JSON"),
        (json.dumps(switchover(extra=1)), "unknown field(s) 'extra'"),
        (json.dumps({k: v for k, v in switchover().items() if k != "to"}), "missing field(s) 'to'"),
        ('{"id":"0123456789abcdef","id":"0123456789abcdef"}', "appears twice"),
        (json.dumps(switchover(id="ABC")), "id must be"),
        (json.dumps(switchover(id="a" * 64)), "id must be"),
        (json.dumps(switchover(by=7)), "by must be a string"),
        (json.dumps(switchover(by="x" * 257)), "by is longer than 256"),
        (json.dumps(switchover(by="alice\nroot")), "control characters"),
        (json.dumps(switchover(at="2026-01-02 03:04:05")), "at must be an RFC 3339 UTC time"),
        (json.dumps(switchover(at="2026-01-02T03:04:05+01:00")), "at must be an RFC 3339 UTC time"),
        (json.dumps(switchover(at="2026-02-30T03:04:05Z")), "not a valid date"),
        (json.dumps(switchover(deadline="2026-01-02T03:04:05Z")), "deadline must be after at"),
        (json.dumps(switchover(deadline="2026-01-02T05:04:06Z")), "by at most 1:00:00"),
        (json.dumps(switchover(to="../etc")), "to must be empty or a pod name"),
        (json.dumps(switchover(to="Pod_1")), "to must be empty or a pod name"),
        ("[" * 100000 + "]" * 100000, "longer than 2048 bytes"),
        (json.dumps(switchover(by="x" * 3000)), "longer than 2048 bytes"),
    ],
)
def test_hostile_switchover_values_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(RequestError, match=None) as refused:
        requests.parse_switchover(text)
    assert complaint in str(refused.value)


def test_deep_nesting_within_the_size_cap_is_refused() -> None:
    with pytest.raises(RequestError):
        requests.parse_switchover("[" * 1000 + "]" * 1000)


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"force": 1}, "force must be true or false"),
        ({"force": "yes"}, "force must be true or false"),
        ({"to": ""}, "to must be a pod name"),
    ],
)
def test_failover_is_strict(document: dict[str, object], complaint: str) -> None:
    text = json.dumps({**switchover(), "force": False, **document})
    with pytest.raises(RequestError) as refused:
        requests.parse_failover(text)
    assert complaint in str(refused.value)


@pytest.mark.parametrize(
    ("text", "zones"),
    [
        ("dyn.test", ("dyn.test",)),
        ("Dyn.Test.,other.test, dyn.test", ("dyn.test", "other.test")),
        ("2.0.192.in-addr.arpa", ("2.0.192.in-addr.arpa",)),
        ("_acme.example.com", ("_acme.example.com",)),
    ],
)
def test_reseed_zone_names_are_normalised(text: str, zones: tuple[str, ...]) -> None:
    assert requests.parse_reseed(text).zones == zones


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a..b",
        ",dyn.test",
        "-bad.test",
        "bad-.test",
        "a b.test",
        "x" * 64 + ".test",
        "zone;rm -rf",
    ],
)
def test_reseed_refuses_what_is_not_a_zone_name(text: str) -> None:
    with pytest.raises(RequestError):
        requests.parse_reseed(text)


def test_reseed_caps_the_number_of_zones() -> None:
    requests.parse_reseed(",".join(f"z{n}.test" for n in range(64)))
    with pytest.raises(RequestError, match="more than 64 zones"):
        requests.parse_reseed(",".join(f"z{n}.test" for n in range(65)))


def test_reseed_id_follows_the_zones() -> None:
    assert Reseed(("a.test",)).id == Reseed(("a.test",)).id
    assert Reseed(("a.test",)).id != Reseed(("b.test",)).id
    assert Reseed(("b.test", "a.test")).id == Reseed(("a.test", "b.test")).id, "the primary sorts them"
    assert requests.ID.match(Reseed(("a.test",)).id)


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"outcome": "maybe"}, "outcome must be one of"),
        ({"kind": "reboot"}, "kind must be one of"),
        ({"seconds": -1}, "seconds must be null or a number"),
        ({"seconds": True}, "seconds must be null or a number"),
        ({"seconds": "1"}, "seconds must be null or a number"),
        ({"reason": "x" * 513}, "reason is longer than 512"),
    ],
)
def test_answers_are_strict(document: dict[str, object], complaint: str) -> None:
    base = {"id": "0123456789abcdef", "kind": "switchover", "outcome": "done", "reason": "", "by": "p-0"}
    text = json.dumps({**base, "at": "2026-01-02T03:04:05Z", "seconds": 1.5, **document})
    with pytest.raises(RequestError) as refused:
        requests.parse_answer(text)
    assert complaint in str(refused.value)


def test_format_refuses_what_parse_would_refuse() -> None:
    with pytest.raises(RequestError):
        requests.format_request(
            Switchover(id="0123456789abcdef", by="a\x1b[2J", at=AT, deadline=DEADLINE, to="")
        )
    with pytest.raises(RequestError):
        requests.format_request(Pause(id="0123456789abcdef", by="a", at=AT, reason="x" * 600))


def test_read_collects_everything_and_never_raises() -> None:
    keys = Keys()
    annotations = {
        keys.request("pause"): requests.format_request(
            Pause(id="0123456789abcdef", by="a", at=AT, reason="r")
        ),
        keys.request("switchover"): "{not json",
        keys.request("reseed"): "dyn.test",
        keys.answer("failover"): requests.format_answer(
            Answer(
                id="0123456789abcdef",
                kind="failover",
                outcome="done",
                reason="",
                by="p-1",
                at=AT,
                seconds=2.0,
            )
        ),
        keys.answer("switchover"): requests.format_answer(
            Answer(
                id="0123456789abcdef", kind="reseed", outcome="done", reason="", by="p-1", at=AT, seconds=None
            )
        ),
        "unrelated/annotation": "x",
    }
    found = requests.read(annotations)
    assert found.paused and found.pause is not None and found.pause.reason == "r"
    assert found.switchover is None
    assert found.reseed == Reseed(("dyn.test",))
    assert set(found.answers) == {"failover"}
    assert any(problem.startswith("bind-ha.io/switchover: not JSON") for problem in found.problems)
    assert "bind-ha.io/answer-switchover: answers a reseed request" in found.problems


def test_a_malformed_pause_still_pauses() -> None:
    found = requests.read({"bind-ha.io/paused": "false"})
    assert found.paused and found.pause is None
    assert found.problems and found.problems[0].startswith("bind-ha.io/paused:")
    assert not requests.read({"bind-ha.io/paused": ""}).paused
    assert not requests.read(None).paused


def test_expiry_is_judged_at_the_deadline() -> None:
    request = Switchover(id="0123456789abcdef", by="a", at=AT, deadline=DEADLINE, to="")
    assert not requests.expired(request, DEADLINE - datetime.timedelta(microseconds=1))
    assert requests.expired(request, DEADLINE)
