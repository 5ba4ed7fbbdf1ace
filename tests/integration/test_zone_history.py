"""A dynamic zone's records survive every election: no reseed, no fork, no stalled rejoin.

Real agents, real named and the real API server.
"""

from __future__ import annotations

import os
import shutil
import signal
import time

import kubernetes

from bind_ha import requests
from tests.harness import dnsclient
from tests.harness.pods import DNS_PORT, LocalPod, LocalRelease
from tests.harness.traffic import Writer, dropped_tcp_to
from tests.integration.test_zone_data import dnspython_burst, identical_everywhere, names_in, pod_metrics

LEASE = "test-bind-ha-leader"


def lease_annotations(release: LocalRelease) -> dict[str, str]:
    lease = release.lease()
    assert lease is not None
    return dict(lease.metadata.annotations or {})


def never_holds(release: LocalRelease, pods: list[LocalPod], seconds: float) -> None:
    """For `seconds`, none of pods holds the Lease."""
    deadline = time.monotonic() + seconds
    identities = {pod.identity for pod in pods}
    while time.monotonic() < deadline:
        holder = release.holder()
        assert holder not in identities, f"{holder} took the Lease\n{release.logs_tail()}"
        time.sleep(0.1)


def test_a_pod_without_data_never_reseeds_a_dynamic_zone_that_held_data(release: LocalRelease) -> None:
    """The issue's reproduction: 3 pods, 5 signed updates; c loses its volume and crashes, the
    primary crashes, b (the only pod with data) is paused; c restarts. c must stand aside
    (an election would seed the zone and b would then transfer the empty seed)."""
    primary, (b, c) = release.start_pods(3)
    dnspython_burst(release, primary, "kept", 5)
    identical_everywhere(release, "dyn.test", [primary, b, c])
    c.crash()
    shutil.rmtree(c.data_dir)
    primary.crash()
    assert b.named_pid
    os.kill(b.named_pid, signal.SIGSTOP)
    try:
        c.start()
        never_holds(release, [c], release.timing.lease_duration * 1.5)
        c.wait_for_log("has no copy of dynamic zone(s) dyn.test")
        assert 'bind_ha_zone_data_missing{zone="dyn.test"} 1' in pod_metrics(c)
    finally:
        os.kill(b.named_pid, signal.SIGCONT)
    new = release.wait_for_leader(excluding=primary, timeout=40)
    assert new is b, f"{new.name} became primary without the zone's data"
    contents = identical_everywhere(release, "dyn.test", [b, c])
    assert {f"kept{i}" for i in range(5)} <= names_in(contents)
    assert "dyn.test" in lease_annotations(release).get("bind-ha.io/zones-with-data", "")
    events = kubernetes.client.CoreV1Api(release.api_client).list_namespaced_event(release.namespace).items
    assert any(event.reason == "StandingAside" and event.involved_object.name == c.name for event in events)


def test_only_an_operators_reseed_request_seeds_a_zone_that_held_data_and_it_is_cleared(
    release: LocalRelease,
) -> None:
    primary, (other,) = release.start_pods(2)
    dnspython_burst(release, primary, "lost", 3)
    identical_everywhere(release, "dyn.test", [primary, other])
    for pod in (primary, other):  # every volume is gone
        pod.crash()
        shutil.rmtree(pod.data_dir)
    for pod in (primary, other):
        pod.start()
    never_holds(release, [primary, other], release.timing.lease_duration + 2)
    for pod in (primary, other):
        pod.wait_for_log("has no copy of dynamic zone(s) dyn.test")

    # the operator's request, as `kubectl annotate lease ... bind-ha.io/reseed=dyn.test` writes it
    kubernetes.client.CoordinationV1Api(release.api_client).patch_namespaced_lease(
        LEASE, release.namespace, {"metadata": {"annotations": {"bind-ha.io/reseed": "dyn.test"}}}
    )
    new = release.wait_for_leader(timeout=40)
    dnspython_burst(release, new, "fresh", 1)
    contents = identical_everywhere(release, "dyn.test", [primary, other])
    assert "fresh0" in names_in(contents) and not names_in(contents) & {f"lost{i}" for i in range(3)}
    deadline = time.monotonic() + 10
    while "bind-ha.io/reseed" in lease_annotations(release):
        assert time.monotonic() < deadline, "the honoured reseed request was never cleared"
        time.sleep(0.1)
    assert lease_annotations(release)["bind-ha.io/zones-with-data"] == "dyn.test"
    # ... and answered, for `bind-ha reseed` (the request was settled in the promotion's write)
    while (answer := requests.read(lease_annotations(release)).answers.get("reseed")) is None:
        assert time.monotonic() < deadline, "the honoured reseed request was never answered"
        time.sleep(0.1)
    assert (answer.id, answer.outcome, answer.by) == (requests.Reseed(("dyn.test",)).id, "done", new.name)
    events = kubernetes.client.CoreV1Api(release.api_client).list_namespaced_event(release.namespace).items
    assert any(event.reason == "ReseedDone" and event.involved_object.name == new.name for event in events)


def test_a_restarted_pod_becomes_ready_while_updates_keep_flowing(release: LocalRelease) -> None:
    """Four writers keep the primary's serial moving every few milliseconds: a pod that compares
    its serial with the primary's *current* one is never in step; one that waits for the serial
    the primary had when it first asked is, within a round or two."""
    leader, (follower, _other) = release.start_pods(3)
    writers = [
        Writer(lambda: [leader.address], DNS_PORT, "dyn.test", release.update_key(), f"flow{n}-", pause=0)
        for n in range(4)
    ]
    for writer in writers:
        writer.start()
    try:
        time.sleep(1)
        follower.stop()
        follower.start()
        restarted = time.monotonic()
        deadline = restarted + 20
        while not (verdict := follower.probe()).ready:
            assert time.monotonic() < deadline, f"not ready 20s after a restart under writes: {verdict.text}"
            time.sleep(0.2)
        sent = sum(writer.sent for writer in writers)
        print(f"ready {time.monotonic() - restarted:.2f}s after the restart, {sent} updates sent")
    finally:
        for writer in writers:
            writer.stop()
    assert sum(len(writer.acknowledged) for writer in writers) > 400
    identical_everywhere(release, "dyn.test", [leader, follower])


def test_a_forked_former_primary_is_in_step_only_once_its_refetch_finished(release: LocalRelease) -> None:
    """The old primary comes back with updates nobody else got, at a serial above the new
    primary's (a small lift margin makes that easy). While its transfers from the new primary
    are blocked, it must not call itself in step (ready) however its serial compares."""
    release.serial_margin = 1
    old, (ahead, behind) = release.start_pods(3)
    assert ahead.named_pid and behind.named_pid
    for pid in (ahead.named_pid, behind.named_pid):
        os.kill(pid, signal.SIGSTOP)
    try:
        dnspython_burst(release, old, "forked", 5)  # acknowledged by old alone, not yet published
        old.crash()
    finally:
        for pid in (ahead.named_pid, behind.named_pid):
            os.kill(pid, signal.SIGCONT)
    new = release.wait_for_leader(excluding=old, timeout=40)
    survivors = [ahead, behind]
    lifted = release.wait_converged("dyn.test", pods=survivors)
    with dropped_tcp_to(new.address, DNS_PORT):
        old.start()
        deadline = time.monotonic() + 2 * release.timing.retry_period + 4
        while time.monotonic() < deadline:
            verdict = old.probe()
            assert not verdict.ready and "dyn.test: not yet in step" in verdict.text, (
                f"{verdict} while its re-fetch cannot finish"
            )
            time.sleep(0.2)
        assert dnsclient.serial(old.address, DNS_PORT, "dyn.test") != lifted  # still its own history
    release.wait_for_agents()
    contents = identical_everywhere(release, "dyn.test", [old, *survivors])
    assert not names_in(contents) & {f"forked{i}" for i in range(5)}
    deadline = time.monotonic() + 15
    while not old.probe().ready:
        assert time.monotonic() < deadline, old.probe().text
        time.sleep(0.2)
