"""What the request commands refuse, and how they write and wait (pure; a fake Lease API)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import pytest

from bind_ha import requests
from bind_ha.cli import plan
from bind_ha.cli.actions import Lease, Refused
from bind_ha.cli.api import CommandError, Conflict
from bind_ha.cli.model import assess
from bind_ha.peers import Status
from tests.unit.cli_views import NOW, healthy, lease, with_pod

# ---- switchover ------------------------------------------------------------------------


def test_switchover_to_a_healthy_secondary_in_step_is_allowed() -> None:
    assessment = assess(healthy(), NOW)
    assert plan.switchover_refusal(assessment, "p-1") is None
    assert plan.switchover_refusal(assessment, None) is None
    assert [report.pod.name for report in plan.candidates(assessment)] == ["p-1", "p-2"]


def test_a_target_a_few_serials_behind_is_left_to_the_primarys_live_check() -> None:
    """Under a stream of updates the serials published a round ago always differ a little."""
    behind = with_pod(healthy(), "p-1", status=Status(True, {"dyn.test": 1000, "example.test": 7}))
    assert plan.switchover_refusal(assess(behind, NOW), "p-1") is None
    ahead = with_pod(healthy(), "p-1", status=Status(True, {"dyn.test": 1005, "example.test": 7}))
    assert plan.switchover_refusal(assess(ahead, NOW), "p-1") is None


@pytest.mark.parametrize(
    ("view", "target", "reason"),
    [
        (healthy(), "p-0", "p-0 is already the primary"),
        (healthy(), "p-9", "there is no pod p-9 in this release"),
        (with_pod(healthy(), "p-1", ready=False), "p-1", "p-1 is not ready"),
        (with_pod(healthy(), "p-1", deleting=True), "p-1", "p-1 is being deleted"),
        (with_pod(healthy(), "p-1", status=None), "p-1", "p-1's agent publishes no status"),
        (
            with_pod(healthy(), "p-1", status=Status(False, {"dyn.test": 1002, "example.test": 7})),
            "p-1",
            "p-1's agent reports itself unhealthy",
        ),
        (
            with_pod(healthy(), "p-2", status=Status(True, {"example.test": 7})),
            "p-2",
            "p-2 is not in step with the primary: dyn.test missing",
        ),
        (
            with_pod(with_pod(healthy(), "p-1", ready=False), "p-2", ready=False),
            None,
            "no secondary is ready, healthy and has every zone of the primary",
        ),
        (
            with_pod(healthy(), "p-0", role="secondary"),
            "p-1",
            "there is no healthy primary to hand over from",
        ),
    ],
)
def test_switchover_refusals_say_why(view: Any, target: str | None, reason: str) -> None:
    refusal = plan.switchover_refusal(assess(view, NOW), target)
    assert refusal is not None and reason in refusal


def test_a_pending_request_blocks_another_until_its_deadline() -> None:
    request = requests.Switchover(
        id="0123456789abcdef", by="bob", at=NOW, deadline=NOW + datetime.timedelta(seconds=30), to="p-1"
    )
    found = requests.read({"bind-ha.io/switchover": requests.format_request(request)})
    blocked = plan.pending(found, requests.SWITCHOVER, NOW)
    assert blocked is not None and "requested by bob (id 0123456789abcdef) is pending for 30s more" in blocked
    assert plan.pending(found, requests.SWITCHOVER, NOW + datetime.timedelta(seconds=30)) is None
    assert plan.pending(found, requests.FAILOVER, NOW) is None


# ---- failover ---------------------------------------------------------------------------------


def leaderless(**serials: dict[str, int]) -> Any:
    """No holder; pods p-0..p-2 publish the given serials."""
    view = replace(healthy(), lease=lease(None))
    for name, published in serials.items():
        view = with_pod(view, name.replace("_", "-"), status=Status(True, published), role="secondary")
    return view


def test_failover_is_for_when_no_healthy_primary_exists() -> None:
    refusal = plan.failover_refusal(assess(healthy(), NOW), "p-1", force=False)
    assert refusal == (
        "p-0 is a healthy primary: use `bind-ha switchover --to p-1` "
        "(it works while automation is paused too)"
    )
    assert plan.failover_refusal(assess(healthy(), NOW), "p-0", force=True) == "p-0 is already the primary"


def test_failover_to_a_pod_with_every_newest_serial_needs_no_force() -> None:
    view = leaderless(p_0={"dyn.test": 5}, p_1={"dyn.test": 7}, p_2={"dyn.test": 6})
    assessment = assess(view, NOW)
    assert plan.losses(assessment, "p-1") == []
    assert plan.failover_refusal(assessment, "p-1", force=False) is None


def test_failover_to_a_pod_lacking_data_needs_force_and_says_what_is_lost() -> None:
    view = leaderless(p_0={"dyn.test": 5, "other.test": 3}, p_1={"dyn.test": 7}, p_2={"dyn.test": 4})
    assessment = assess(view, NOW)
    lost = plan.losses(assessment, "p-2")
    assert lost == ["dyn.test: p-2 has serial 4; p-1 has 7", "other.test: p-2 has no copy; p-0 has serial 3"]
    refusal = plan.failover_refusal(assessment, "p-2", force=False)
    assert refusal is not None and "p-2 lacks data other pods have" in refusal and "--force" in refusal
    assert plan.failover_refusal(assessment, "p-2", force=True) is None


def test_failover_still_refuses_a_pod_that_cannot_serve() -> None:
    view = with_pod(leaderless(p_0={"dyn.test": 5}), "p-1", ready=False)
    refusal = plan.failover_refusal(assess(view, NOW), "p-1", force=False)
    assert refusal == "p-1 is not ready (a pod without a zone's data is not): --force promotes it anyway"
    unhealthy = with_pod(view, "p-1", ready=False, status=Status(False, {}))
    refusal = plan.failover_refusal(assess(unhealthy, NOW), "p-1", force=True)
    assert refusal == "p-1's agent reports itself unhealthy"


# ---- writing and waiting ---------------------------------------------------------------------


@dataclass
class FakeLeaseApi:
    """A Lease whose resourceVersion moves on each write; some writes lose a race first."""

    annotations: dict[str, str] = field(default_factory=dict)
    version: int = 1
    conflicts: int = 0
    exists: bool = True
    writes: list[dict[str, Any]] = field(default_factory=list)
    on_read: Any = None

    def read_lease(self, name: str) -> Any:
        if self.on_read is not None:
            self.on_read(self)
        if not self.exists:
            return None
        metadata = SimpleNamespace(
            name=name,
            namespace="dns",
            uid="u",
            resource_version=str(self.version),
            annotations=dict(self.annotations),
        )
        return SimpleNamespace(metadata=metadata)

    def patch_lease(self, name: str, body: dict[str, Any]) -> Any:
        self.writes.append(body)
        if self.conflicts:
            self.conflicts -= 1
            self.version += 1  # someone else wrote
            raise Conflict("patch Lease")
        assert body["metadata"]["resourceVersion"] == str(self.version)
        for key, value in body["metadata"]["annotations"].items():
            if value is None:
                self.annotations.pop(key, None)
            else:
                self.annotations[key] = value
        self.version += 1
        return self.read_lease(name)


@dataclass
class FakeClock:
    now: float = 100.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> datetime.datetime:
        return NOW + datetime.timedelta(seconds=self.now)

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def lease_api(api: FakeLeaseApi) -> Lease:
    return Lease(api, "dns-bind-ha-leader", requests.Keys())  # type: ignore[arg-type]


def test_a_write_carries_the_version_it_read_and_retries_after_a_409() -> None:
    api = FakeLeaseApi(conflicts=2, annotations={"bind-ha.io/answer-reseed": "old"})
    lease_api(api).write("reseed", "dyn.test", lambda found: None)
    assert [write["metadata"]["resourceVersion"] for write in api.writes] == ["1", "2", "3"]
    assert api.annotations == {"bind-ha.io/reseed": "dyn.test"}, "the old answer goes with the new request"


def test_each_retry_judges_again() -> None:
    api = FakeLeaseApi(conflicts=1)
    seen: list[bool] = []

    def check(found: requests.Requests) -> str | None:
        seen.append(found.paused)
        return "now paused" if len(seen) > 1 else None

    with pytest.raises(Refused, match="now paused"):
        lease_api(api).write("switchover", "{}", check)
    assert len(seen) == 2


def test_a_lease_that_keeps_changing_gives_up_with_an_error() -> None:
    api = FakeLeaseApi(conflicts=100)
    with pytest.raises(CommandError, match="changed under each of 8 attempts"):
        lease_api(api).write("pause", "true", lambda found: None)


def test_no_lease_no_request() -> None:
    with pytest.raises(Refused, match="does not exist yet"):
        lease_api(FakeLeaseApi(exists=False)).write("pause", "true", lambda found: None)


def answer(request_id: str, outcome: str = "done") -> str:
    return requests.format_answer(
        requests.Answer(
            id=request_id, kind="switchover", outcome=outcome, reason="", by="p-1", at=NOW, seconds=0.8
        )
    )


def test_waiting_ends_at_our_answer_not_at_an_older_one() -> None:
    clock = FakeClock()
    api = FakeLeaseApi(annotations={"bind-ha.io/answer-switchover": answer("old0000000000000")})

    def agent_answers_after_3s(fake: FakeLeaseApi) -> None:
        if clock.now >= 103:
            fake.annotations["bind-ha.io/answer-switchover"] = answer("ours000000000000")

    api.on_read = agent_answers_after_3s
    found = lease_api(api).await_answer("switchover", "ours000000000000", 10, clock, clock.sleep)
    assert found is not None and found.id == "ours000000000000" and found.seconds == 0.8
    assert clock.now == 103


def test_waiting_gives_up_after_the_time_given() -> None:
    clock = FakeClock()
    found = lease_api(FakeLeaseApi()).await_answer("switchover", "ours000000000000", 2.2, clock, clock.sleep)
    assert found is None
    assert clock.now == pytest.approx(102.2)


def test_resume_leaves_the_pauses_answer_for_the_agents_to_see() -> None:
    api = FakeLeaseApi(annotations={"bind-ha.io/paused": "true", "bind-ha.io/answer-pause": "kept"})
    lease_api(api).write("pause", None, lambda found: None, clear_answer=False)
    assert api.annotations == {"bind-ha.io/answer-pause": "kept"}


def test_only_zones_that_held_data_can_be_lost() -> None:
    view = leaderless(
        p_0={"dyn.test": 5, "example.test": 3},
        p_1={"dyn.test": 5, "example.test": 1},
        p_2={"dyn.test": 4, "example.test": 3},
    )
    assessment = assess(view, NOW)
    assert plan.losses(assessment, "p-1") == ["example.test: p-1 has serial 1; p-0 has 3"]
    assert plan.losses(assessment, "p-1", frozenset({"dyn.test"})) == []
    refusal = plan.failover_refusal(assessment, "p-1", force=False, with_data=frozenset({"dyn.test"}))
    assert refusal is None
