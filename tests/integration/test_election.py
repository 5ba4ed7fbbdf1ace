"""Three agents, each with its own named, elect one primary (real API server, real BIND)."""

from __future__ import annotations

import time

import dns.rcode
import dns.xfr
import kubernetes
import pytest

from tests.harness import dnsclient
from tests.harness.pods import DNS_PORT, UPDATE_KEY, LocalRelease


def update_key(release: LocalRelease) -> tuple[str, str]:
    return UPDATE_KEY, release.secret("update-secret")


def test_exactly_one_primary_and_labels_and_role_files_agree(release: LocalRelease) -> None:
    pods = release.add_pods(3)
    for pod in pods:
        pod.start()
    leader = release.wait_for_leader()

    def agreed() -> list[tuple[str, str | None, str | None]]:
        """(pod, role file, role label) of every pod that does not agree with the Lease yet."""
        expected = {pod.name: "primary" if pod is leader else "secondary" for pod in pods}
        return [
            (pod.name, pod.role_file(), pod.role_label())
            for pod in pods
            if (pod.role_file(), pod.role_label()) != (expected[pod.name],) * 2
        ]

    deadline = time.monotonic() + 4 * release.timing.retry_period + 5  # followers label themselves
    while disagreeing := agreed():
        assert time.monotonic() < deadline, f"roles never settled: {disagreeing}\n{release.logs_tail()}"
        time.sleep(0.1)
    assert release.primary_labelled() == [leader.name]
    assert release.holder() == leader.identity


def test_a_primary_label_set_by_hand_is_corrected_within_a_retry_period(release: LocalRelease) -> None:
    pods = release.add_pods(2)
    for pod in pods:
        pod.start()
    leader = release.wait_for_leader()
    (follower,) = [pod for pod in pods if pod is not leader]
    core = kubernetes.client.CoreV1Api(release.api_client)
    core.patch_namespaced_pod(
        follower.name, release.namespace, {"metadata": {"labels": {"bind-ha.io/role": "primary"}}}
    )
    deadline = time.monotonic() + release.timing.retry_period * 1.2 + 1.0
    while follower.role_label() != "secondary":
        assert time.monotonic() < deadline, "hand-set primary label not corrected within one retry period"
        time.sleep(0.05)
    assert release.primary_labelled() == [leader.name]


def test_unsigned_transfers_and_updates_are_refused_and_secondaries_forward(release: LocalRelease) -> None:
    pods = release.add_pods(2)
    for pod in pods:
        pod.start()
    leader = release.wait_for_leader()
    (follower,) = [pod for pod in pods if pod is not leader]
    release.wait_converged("dyn.test")  # a secondary answers SERVFAIL until its first transfer
    for pod in pods:
        with pytest.raises(dns.xfr.TransferError) as refused:
            dnsclient.axfr(pod.address, DNS_PORT, "dyn.test", key=None)
        assert refused.value.rcode == dns.rcode.REFUSED
        assert dnsclient.update(pod.address, DNS_PORT, "dyn.test", add={"unsigned": "192.0.2.9"}) == "REFUSED"
    # A signed update sent to the secondary is forwarded to the primary and comes back by IXFR.
    assert (
        dnsclient.update(
            follower.address, DNS_PORT, "dyn.test", add={"fwd": "192.0.2.10"}, key=update_key(release)
        )
        == "NOERROR"
    )
    assert dnsclient.lookup(leader.address, DNS_PORT, "fwd.dyn.test") == ["192.0.2.10"]
    deadline = time.monotonic() + 5
    while dnsclient.lookup(follower.address, DNS_PORT, "fwd.dyn.test") != ["192.0.2.10"]:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # nsupdate, BIND's own client, takes the same path.
    result = dnsclient.nsupdate(
        follower.address,
        DNS_PORT,
        "dyn.test",
        ["update add nsu.dyn.test 300 A 192.0.2.11"],
        update_key(release),
    )
    assert result.returncode == 0, result.stderr
    assert dnsclient.lookup(leader.address, DNS_PORT, "nsu.dyn.test") == ["192.0.2.11"]
