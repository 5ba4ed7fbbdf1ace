"""The agents honour the operator's requests: real agents, real named, the real API server.

Each request is sent by the installed `bind-ha` command (or, to reach the agents' own
refusals, written straight onto the Lease as a command that skipped its checks would), and
each test checks what the agents did about it: the answer on the Lease, the Event, the exit
code and the release itself (who holds the Lease, which data every pod serves).
"""

from __future__ import annotations

import datetime
import shutil
import time

import kubernetes

from bind_ha import requests
from bind_ha.requests import Failover, Keys, Switchover
from tests.harness import dnsclient
from tests.harness.pods import DNS_PORT, LocalPod, LocalRelease
from tests.harness.traffic import Writer, dropped_tcp_to
from tests.integration.test_cli import bind_ha, lease_requests, status, wait_for_status
from tests.integration.test_failover import accepted_within
from tests.integration.test_zone_data import identical_everywhere, names_in


def healthy(release: LocalRelease) -> LocalPod:
    leader = release.wait_for_leader()
    wait_for_status(release, "healthy", lambda code, _doc: code == 0, timeout=30)
    return leader


def events(release: LocalRelease, reason: str) -> list[kubernetes.client.CoreV1Event]:
    found = kubernetes.client.CoreV1Api(release.api_client).list_namespaced_event(release.namespace).items
    return [event for event in found if event.reason == reason]


def wait_for_event(release: LocalRelease, reason: str, timeout: float = 15) -> kubernetes.client.CoreV1Event:
    deadline = time.monotonic() + timeout
    while not (found := events(release, reason)):
        assert time.monotonic() < deadline, f"no {reason} Event within {timeout}s\n{release.logs_tail()}"
        time.sleep(0.2)
    return found[-1]


def wait_for_answer(
    release: LocalRelease, kind: str, request_id: str, timeout: float = 20
) -> requests.Answer:
    deadline = time.monotonic() + timeout
    while True:
        answer = lease_requests(release).answers.get(kind)
        if answer is not None and answer.id == request_id:
            return answer
        assert time.monotonic() < deadline, f"no answer to {kind} {request_id}\n{release.logs_tail()}"
        time.sleep(0.2)


def write_request(release: LocalRelease, request: requests.Request) -> None:
    """Put a request on the Lease as the command would, without the command's own checks."""
    kind = requests.kind_of(request)
    keys = Keys()
    body = {
        "metadata": {
            "annotations": {keys.request(kind): requests.format_request(request), keys.answer(kind): None}
        }
    }
    kubernetes.client.CoordinationV1Api(release.api_client).patch_namespaced_lease(
        "test-bind-ha-leader", release.namespace, body
    )


def window(seconds: float = 30) -> tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.UTC)
    return now, now + datetime.timedelta(seconds=seconds)


# ---- pause ------------------------------------------------------------------------------------------


def test_a_paused_release_whose_primary_dies_stays_without_one_until_resume(release: LocalRelease) -> None:
    old, followers = release.start_pods(3)
    healthy(release)
    paused = bind_ha(release, "pause", "--reason", "node maintenance", "--wait", "20")
    assert paused.returncode == 0, paused.stdout + paused.stderr
    assert "pause done after" in paused.stdout and f"answered by {old.name}" in paused.stdout
    assert wait_for_event(release, "Paused").involved_object.name == old.name
    code, document = status(release)
    assert code == 0 and document["lease"]["paused"] is True  # type: ignore[index]

    old.crash()
    # Far past the moment an unpaused release would have taken over (the lease duration).
    time.sleep(release.timing.lease_duration + 3 * release.timing.retry_period)
    assert release.holder() == old.identity, "a pod took the Lease while automation was paused"
    assert [pod.role_file() for pod in followers] == ["secondary", "secondary"]
    code, document = status(release)
    assert code == 1 and document["primary"] is None
    assert any("paused" in line for line in followers[0].log_text().splitlines())

    resumed = bind_ha(release, "resume")
    assert resumed.returncode == 0, resumed.stderr
    new = release.wait_for_leader(excluding=old, timeout=30)
    assert new in followers
    wait_for_event(release, "Resumed")
    assert "pause" not in lease_requests(release).answers, "the pause's answer is cleared on resume"


# ---- switchover -------------------------------------------------------------------------------------


def test_a_switchover_to_a_named_pod_under_writes_loses_no_acknowledged_update(release: LocalRelease) -> None:
    old, followers = release.start_pods(3)
    healthy(release)
    target = followers[1]
    writer = Writer(
        lambda: [pod.address for pod in release], DNS_PORT, "dyn.test", release.update_key(), "sw"
    )
    writer.start()
    try:
        time.sleep(1)
        moved = bind_ha(release, "switchover", "--to", target.name, "--wait", "30")
        accepted_within(release, target, "after-switchover", "192.0.2.41", timeout=15)
        time.sleep(0.5)
    finally:
        writer.stop()
    assert moved.returncode == 0, moved.stdout + moved.stderr + release.logs_tail()
    assert f"answered by {old.name}" in moved.stdout
    assert f"{target.name} is the primary: the switchover took" in moved.stdout
    took = float(moved.stdout.split("the switchover took ")[1].split("s")[0])
    assert took < release.timing.lease_duration, f"{took:.2f}s: as slow as a crash failover"
    assert release.holder() == target.identity and release.primary_labelled() == [target.name]
    answer = lease_requests(release).answers["switchover"]
    assert answer.outcome == "done" and answer.seconds is not None
    present = names_in(identical_everywhere(release, "dyn.test", list(release)))
    lost = [name for name in writer.acknowledged if name not in present]
    assert len(writer.acknowledged) > 50 and lost == []
    assert wait_for_event(release, "SwitchoverDone").involved_object.name == old.name


def test_a_switchover_the_agents_cannot_honour_is_answered(release: LocalRelease) -> None:
    leader, followers = release.start_pods(3)
    healthy(release)

    at, deadline = window()
    absent = Switchover(id="switch-absent", by="test", at=at, deadline=deadline, to="test-bind-ha-9")
    write_request(release, absent)
    answer = wait_for_answer(release, "switchover", absent.id)
    assert (answer.outcome, answer.by) == ("refused", leader.name)
    assert answer.reason == "there is no pod test-bind-ha-9 in this release"
    assert lease_requests(release).switchover is None, "the answer removes the request"
    assert wait_for_event(release, "SwitchoverRefused").involved_object.name == leader.name

    # A target the primary's transfers cannot reach: healthy, but behind after one update.
    behind = followers[0]
    with dropped_tcp_to(leader.address, DNS_PORT):  # transfers are TCP; NOTIFY, SOA checks are not
        update = ["update add behind.dyn.test 300 A 192.0.2.43"]
        sent = dnsclient.nsupdate(leader.address, DNS_PORT, "dyn.test", update, release.update_key())
        assert sent.returncode == 0, sent.stderr
        refused = bind_ha(release, "switchover", "--to", behind.name, "--wait", "20")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "switchover refused after" in refused.stdout
    assert f"{behind.name} is not in step with the primary within 1s: dyn.test 1 behind" in refused.stdout
    assert release.holder() == leader.identity
    assert accepted_within(release, leader, "after-refusal", "192.0.2.42", timeout=10), "writes resumed"

    failover = Failover(id="fail-healthy", by="test", at=at, deadline=deadline, to=behind.name, force=False)
    write_request(release, failover)
    answer = wait_for_answer(release, "failover", failover.id)
    assert answer.outcome == "refused" and f"{leader.name} is a healthy primary" in answer.reason


# ---- failover ---------------------------------------------------------------------------------------


def test_a_forced_failover_of_a_pod_without_data_says_what_it_discards(release: LocalRelease) -> None:
    old, (empty,) = release.start_pods(2)
    healthy(release)
    key = release.update_key()
    assert (
        dnsclient.update(old.address, DNS_PORT, "dyn.test", add={"kept": "192.0.2.50"}, key=key) == "NOERROR"
    )
    release.wait_converged("dyn.test")
    old.crash()
    empty.stop()
    shutil.rmtree(empty.data_dir)  # its volume is lost: it has no copy of dyn.test any more
    empty.start()
    empty.wait_for_log("standing aside")
    release.report_readiness()

    refused = bind_ha(release, "failover", "--to", empty.name, "--wait", "20")
    assert refused.returncode == 1 and "--force" in refused.stderr, refused.stdout + refused.stderr

    forced = bind_ha(release, "failover", "--to", empty.name, "--force", "--wait", "30")
    assert forced.returncode == 0, forced.stdout + forced.stderr + release.logs_tail()
    assert f"--force: promoting {empty.name} discards dyn.test: {empty.name} has no copy" in forced.stdout
    assert "failover done after" in forced.stdout and "discarded: dyn.test" in forced.stdout
    assert release.holder() == empty.identity
    event = wait_for_event(release, "FailoverDone")
    assert event.type == "Warning" and "discarded" in event.message
    assert dnsclient.lookup(empty.address, DNS_PORT, "kept.dyn.test") == [], "seeded from its source"
    accepted_within(release, empty, "after-failover", "192.0.2.51", timeout=15)


# ---- reseed ------------------------------------------------------------------------------------------


def test_a_reseed_of_a_zone_the_primary_serves_is_answered_and_keeps_the_data(release: LocalRelease) -> None:
    leader, _followers = release.start_pods(2)
    healthy(release)
    key = release.update_key()
    assert (
        dnsclient.update(leader.address, DNS_PORT, "dyn.test", add={"kept": "192.0.2.52"}, key=key)
        == "NOERROR"
    )
    reseeded = bind_ha(release, "reseed", "dyn.test", "--wait", "20")
    assert reseeded.returncode == 0, reseeded.stdout + reseeded.stderr
    assert "reseed done" in reseeded.stdout
    assert dnsclient.lookup(leader.address, DNS_PORT, "kept.dyn.test") == ["192.0.2.52"]
    refused = bind_ha(release, "reseed", "example.test", "--wait", "20")
    assert refused.returncode == 1 and "not a dynamic zone of this release" in refused.stdout
