"""`bind-ha status`: the verdict, the exit code and the output (pure)."""

from __future__ import annotations

import datetime
import json
from dataclasses import replace

import pytest
import yaml

from bind_ha import requests
from bind_ha.cli import model, render
from bind_ha.cli.model import assess
from bind_ha.peers import Status
from tests.unit.cli_views import NOW, healthy, lease, pod, release, with_pod


def test_a_healthy_release_exits_0() -> None:
    assessment = assess(healthy(), NOW)
    assert assessment.problems == ()
    assert assessment.exit_code == 0
    assert assessment.primary is not None and assessment.primary.name == "p-0"
    assert [report.in_step for report in assessment.pods] == [True, True, True]
    assert assessment.renew_age == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("view", "problem"),
    [
        (replace(healthy(), lease=None), "no Lease dns-bind-ha-leader"),
        (replace(healthy(), lease=lease(None)), "has no holder"),
        (replace(healthy(), lease=lease("p-0", renewed_ago=12)), "expired: last renewed 12s ago"),
        (replace(healthy(), lease=lease("p-0", renewed_ago=8)), "past its renew deadline (7s)"),
        (replace(healthy(), lease=lease("gone")), "holder gone is not a current pod"),
        (with_pod(healthy(), "p-0", uid="new-uid"), "a previous incarnation of that pod"),
        (with_pod(healthy(), "p-0", role="secondary"), "no pod is labelled primary"),
        (with_pod(healthy(), "p-1", role="primary"), "2 pods are labelled primary: p-0, p-1"),
        (with_pod(healthy(), "p-0", deleting=True), "the primary p-0 is being deleted"),
        (with_pod(healthy(), "p-0", status=None), "the primary p-0's agent publishes no status"),
        (
            with_pod(healthy(), "p-0", status=Status(False, {"dyn.test": 1002})),
            "the primary p-0's agent reports itself unhealthy",
        ),
        (
            with_pod(healthy(), "p-2", status=Status(True, {"dyn.test": 1000, "example.test": 7})),
            "ready secondary p-2 is not in step: dyn.test 2 behind",
        ),
        (
            with_pod(healthy(), "p-2", status=Status(True, {"example.test": 7})),
            "ready secondary p-2 is not in step: dyn.test missing",
        ),
        (
            with_pod(healthy(), "p-1", status=Status(True, {"dyn.test": 1005, "example.test": 7})),
            "dyn.test 3 AHEAD of the primary",
        ),
    ],
    ids=[
        "no-lease",
        "released",
        "expired",
        "past-renew-deadline",
        "holder-gone",
        "holder-recreated",
        "no-primary-label",
        "two-primary-labels",
        "primary-deleting",
        "primary-silent",
        "primary-unhealthy",
        "secondary-behind",
        "secondary-missing-zone",
        "secondary-ahead",
    ],
)
def test_every_fault_exits_1_and_is_named(view: model.ReleaseView, problem: str) -> None:
    assessment = assess(view, NOW)
    assert assessment.exit_code == 1
    assert any(problem in line for line in assessment.problems), assessment.problems


def test_unready_or_leaving_secondaries_do_not_count() -> None:
    behind = Status(True, {"dyn.test": 900, "example.test": 7})
    view = with_pod(
        with_pod(healthy(), "p-1", ready=False, status=behind), "p-2", deleting=True, status=behind
    )
    assessment = assess(view, NOW)
    assert assessment.exit_code == 0
    assert "p-1 is not ready" in assessment.notes and "p-2 is being deleted" in assessment.notes
    assert [report.in_step for report in assessment.pods] == [True, False, False]


def test_a_zone_only_a_secondary_has_is_shown_but_not_required() -> None:
    view = with_pod(
        healthy(), "p-1", status=Status(True, {"dyn.test": 1002, "example.test": 7, "old.test": 3})
    )
    assessment = assess(view, NOW)
    assert assessment.exit_code == 0
    assert assessment.zones == ("dyn.test", "example.test", "old.test")


@pytest.mark.parametrize(
    ("reference", "serial", "lag"),
    [(10, 10, 0), (10, 7, 3), (7, 10, -3), (2, 2**32 - 3, 5), (2**32 - 3, 2, -5)],
)
def test_lag_uses_serial_arithmetic(reference: int, serial: int, lag: int) -> None:
    assert model.lag(reference, serial) == lag


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.04, "0.0s"),
        (1.26, "1.3s"),
        (42, "42s"),
        (192, "3m12s"),
        (7500, "2h05m"),
        (273600, "3d04h"),
        (-5, "0.0s"),
    ],
)
def test_durations_read_like_kubectl(seconds: float, text: str) -> None:
    assert model.duration(seconds) == text


def test_a_pause_is_noted_not_failed() -> None:
    pause = requests.Pause(
        id="0123456789abcdef", by="alice", at=NOW - datetime.timedelta(minutes=2), reason="nodes"
    )
    view = replace(
        healthy(), lease=lease("p-0", annotations={"bind-ha.io/paused": requests.format_request(pause)})
    )
    assessment = assess(view, NOW)
    assert assessment.exit_code == 0
    assert "automation PAUSED by alice 2m00s ago: nodes" in assessment.notes
    by_hand = replace(healthy(), lease=lease("p-0", annotations={"bind-ha.io/paused": "true"}))
    assert "automation PAUSED (set by hand)" in assess(by_hand, NOW).notes
    typo = replace(healthy(), lease=lease("p-0", annotations={"bind-ha.io/paused": "yes"}))
    assert any("malformed" in note for note in assess(typo, NOW).notes)


def test_pending_requests_and_answers_are_noted() -> None:
    request = requests.Switchover(
        id="0123456789abcdef", by="bob", at=NOW, deadline=NOW + datetime.timedelta(seconds=30), to="p-1"
    )
    stale = requests.Failover(
        id="fedcba9876543210",
        by="bob",
        at=NOW - datetime.timedelta(seconds=90),
        deadline=NOW - datetime.timedelta(seconds=30),
        to="p-2",
        force=True,
    )
    answer = requests.Answer(
        id="1111222233334444",
        kind="reseed",
        outcome="refused",
        reason="no such zone",
        by="p-0",
        at=NOW,
        seconds=None,
    )
    annotations = {
        "bind-ha.io/switchover": requests.format_request(request),
        "bind-ha.io/failover": requests.format_request(stale),
        "bind-ha.io/answer-reseed": requests.format_answer(answer),
    }
    notes = assess(replace(healthy(), lease=lease("p-0", annotations=annotations)), NOW).notes
    assert "switchover to p-1 requested by bob (id 0123456789abcdef), deadline in 30s" in notes
    assert (
        "failover to p-2 (forced) requested by bob (id fedcba9876543210), EXPIRED 30s ago, unanswered"
        in notes
    )
    assert "last reseed answer (id 1111222233334444): refused by p-0, 0.0s ago: no such zone" in notes


def test_table_shows_roles_serials_lag_and_the_lease() -> None:
    view = with_pod(healthy(), "p-2", status=Status(True, {"dyn.test": 1000, "example.test": 7}), ready=False)
    text = render.table(view, assess(view, NOW), NOW)
    lines = text.splitlines()
    assert lines[0] == "Release dns in namespace dns: HEALTHY: p-0 is the primary; 1 ready secondary in step"
    assert lines[2].split() == [
        "POD",
        "NODE",
        "IP",
        "ROLE",
        "LEASE",
        "READY",
        "AGENT",
        "dyn.test",
        "example.test",
    ]
    assert lines[3].split() == [
        "p-0",
        "node-1",
        "10.0.0.1",
        "primary",
        "holder",
        "yes",
        "healthy",
        "1002",
        "7",
    ]
    assert lines[5].split() == [
        "p-2",
        "node-1",
        "10.0.0.1",
        "secondary",
        "-",
        "no",
        "healthy",
        "1000",
        "(2",
        "behind)",
        "7",
    ]
    lease_line = (
        "Lease dns-bind-ha-leader: holder p-0, held since 2026-03-01T11:55:00.000000Z (5m00s), "
        "renewed 1.0s ago (lease duration 10s), transitions 2"
    )
    assert lease_line in lines
    assert "Automation: running" in lines
    assert "  - p-2 is not ready" in lines


def test_table_lists_problems_of_an_unhealthy_release() -> None:
    view = replace(healthy(), lease=lease("p-0", renewed_ago=30))
    text = render.table(view, assess(view, NOW), NOW)
    assert text.startswith("Release dns in namespace dns: UNHEALTHY (1 problem)\n")
    assert "Problems:\n  - the Lease held by p-0 expired: last renewed 30s ago (lease duration 10s)" in text


def test_json_and_yaml_carry_the_same_document() -> None:
    pause = requests.Pause(id="0123456789abcdef", by="alice", at=NOW, reason="")
    view = replace(
        healthy(), lease=lease("p-0", annotations={"bind-ha.io/paused": requests.format_request(pause)})
    )
    assessment = assess(view, NOW)
    document = json.loads(render.render(view, assessment, NOW, "json"))
    assert yaml.safe_load(render.render(view, assessment, NOW, "yaml")) == document
    assert document["healthy"] is True and document["primary"] == "p-0"
    assert document["pods"][1] == {
        "name": "p-1",
        "node": "node-1",
        "ip": "10.0.0.1",
        "role": "secondary",
        "ready": True,
        "deleting": False,
        "agent": "healthy",
        "holdsLease": False,
        "inStep": True,
        "zones": {"dyn.test": {"serial": 1002, "lag": 0}, "example.test": {"serial": 7, "lag": 0}},
    }
    assert document["lease"]["holderPod"] == "p-0"
    assert document["lease"]["paused"] is True
    assert document["lease"]["pause"]["by"] == "alice"
    assert document["lease"]["renewAgeSeconds"] == 1.0


def test_no_pods_and_no_lease_still_render() -> None:
    view = release(lease_view=None)
    assessment = assess(view, NOW)
    text = render.table(view, assessment, NOW)
    assert "(no pods)" in text and "Lease dns-bind-ha-leader: none yet" in text
    assert assessment.exit_code == 1


def test_a_pod_that_publishes_nothing_shows_dashes() -> None:
    view = release(
        pod("p-0", role="primary"), pod("p-1", published=False, ready=False), lease_view=lease("p-0")
    )
    text = render.table(view, assess(view, NOW), NOW)
    row = next(line for line in text.splitlines() if line.startswith("p-1"))
    assert row.split() == ["p-1", "node-1", "10.0.0.1", "secondary", "-", "no", "-", "-"]


def test_a_hostile_zone_name_cannot_drive_the_terminal() -> None:
    """A pod's status annotation is written by that pod: its zone names reach the table as text only."""
    evil = "\x1b]0;owned\x07\x1b[2Jdyn.test"
    view = with_pod(healthy(), "p-2", status=Status(True, {"dyn.test": 1002, "example.test": 7, evil: 1}))
    text = render.table(view, assess(view, NOW), NOW)
    assert "\x1b" not in text and "\x07" not in text
    assert "\ufffd]0;owned\ufffd\ufffd[2Jdyn.test" in text
    assert "\\u001b" in render.render(view, assess(view, NOW), NOW, "json")


def serials(dyn: int) -> Status:
    return Status(True, {"dyn.test": dyn, "example.test": 7})


def published(primary: int, first: int, second: int, primary_uid: str | None = None) -> model.ReleaseView:
    """The healthy release with p-0 (primary), p-1 and p-2 publishing these dyn.test serials."""
    view = with_pod(
        healthy(), "p-0", status=serials(primary), **({"uid": primary_uid} if primary_uid else {})
    )
    return with_pod(with_pod(view, "p-1", status=serials(first)), "p-2", status=serials(second))


def test_under_writes_a_secondary_past_where_the_primary_was_is_in_step() -> None:
    """Pods publish a round apart: p-2 lags the primary's newest serial, but it has reached the
    serial the primary had in the earlier view, so it keeps up."""
    earlier, now = published(1010, 1010, 1004), published(1020, 1020, 1012)
    assert assess(now, NOW).exit_code == 1  # one view alone: 8 behind
    judged = assess(now, NOW, earlier=earlier)
    assert judged.exit_code == 0, judged.problems
    assert [report.in_step for report in judged.pods] == [True, True, True]


def test_under_writes_a_secondary_ahead_of_an_older_primary_snapshot_is_in_step() -> None:
    earlier, now = published(1010, 1015, 1010), published(1016, 1030, 1016)
    assert assess(now, NOW).lagging == ("p-1",)
    assert assess(now, NOW, earlier=earlier).exit_code == 0


def test_a_secondary_that_stays_behind_is_not_in_step_across_views() -> None:
    judged = assess(published(1020, 1020, 1005), NOW, earlier=published(1010, 1010, 1000))
    assert judged.exit_code == 1 and judged.lagging == ("p-2",)
    assert "ready secondary p-2 is not in step: dyn.test 15 behind" in judged.problems


def test_an_earlier_view_of_another_primary_pod_forgives_nothing() -> None:
    earlier = published(1010, 1010, 1004, primary_uid="old-uid")
    assert assess(published(1020, 1020, 1012), NOW, earlier=earlier).lagging == ("p-2",)
