"""Queries never fail during a switchover, at any pod, even at the one changing role.

A zone changing type would be dropped and reloaded by named; the agent stages the next role in
a second view and switches to it once loaded (render.py), so every question is answered
authoritatively throughout. Real agents, real named, real API server; questions are asked of
each pod's named directly (there is no kube-proxy here), with a generous timeout (1 s) so that a
loaded machine's slow answer is not counted, while SERVFAIL, REFUSED or a missing AA always is.
"""

from __future__ import annotations

import time

from tests.harness import dnsclient
from tests.harness.examples import EXAMPLE_ZONES, big_zone
from tests.harness.pods import DNS_PORT, LocalPod, LocalRelease
from tests.harness.proxy import FORWARD, HANG
from tests.harness.traffic import QueryStream, querying
from tests.integration.test_failover import accepted_within

NAMES = ["www.example.test", "h1.big.test", "h19999.big.test", "seen.dyn.test", "ns1.big.test"]


def assert_answered(streams: dict[str, QueryStream], pods: list[LocalPod], when: str) -> None:
    for pod in pods:
        stream = streams[pod.address]
        assert stream.answered > 100, f"{pod.name}: too few questions answered during {when}"
        assert stream.failures == [], f"{pod.name} during {when}: {stream.summary()}: {stream.failures[:5]}"


def test_queries_are_answered_at_every_pod_through_a_crash_failover_a_demotion_and_a_handover(
    release: LocalRelease,
) -> None:
    release.write_zones([*EXAMPLE_ZONES, big_zone("big.test", 20_000)])
    old, survivors = release.start_pods(3, zones=("example.test", "dyn.test", "big.test"))
    assert (
        dnsclient.update(
            old.address, DNS_PORT, "dyn.test", add={"seen": "192.0.2.60"}, key=release.update_key()
        )
        == "NOERROR"
    )
    release.wait_converged("dyn.test")

    with querying([pod.address for pod in survivors], DNS_PORT, NAMES) as streams:
        old.crash()
        promoted = release.wait_for_leader(excluding=old, timeout=30)
        accepted_within(release, promoted, "after-crash", "192.0.2.61", timeout=15)
        time.sleep(1)
    assert_answered(streams, survivors, "a crash failover")  # the promoted pod included

    old.start()
    release.wait_for_agents()
    release.wait_converged("big.test", timeout=60)
    assert promoted.proxy is not None
    with querying([pod.address for pod in release], DNS_PORT, NAMES) as streams:
        promoted.proxy.set_mode(HANG)  # it fences; another pod takes over; it is demoted
        successor = release.wait_for_leader(excluding=promoted, timeout=30)
        promoted.proxy.set_mode(FORWARD)
        deadline = time.monotonic() + 30
        while promoted.role_file() != "secondary":
            assert time.monotonic() < deadline, "the old primary was never demoted"
            time.sleep(0.1)
        release.wait_converged("dyn.test")
        time.sleep(1)
    assert_answered(streams, list(release), "a demotion")  # the demoted pod included

    remaining = [pod for pod in release if pod is not successor]
    with querying([pod.address for pod in remaining], DNS_PORT, NAMES) as streams:
        successor.stop()
        heir = release.wait_for_leader(excluding=successor, timeout=15)
        accepted_within(release, heir, "after-handover", "192.0.2.62", timeout=15)
        time.sleep(1)
    assert_answered(streams, remaining, "a graceful handover")
