"""Zone data across role changes: bursts, crashes, handovers, live edits (real BIND, real API)."""

from __future__ import annotations

import os
import signal
import time
import urllib.request

import kubernetes

from tests.harness import dnsclient
from tests.harness.examples import EXAMPLE_ZONES
from tests.harness.pods import DNS_PORT, HEALTH_PORT, LocalPod, LocalRelease
from tests.harness.traffic import Writer


def identical_everywhere(release: LocalRelease, zone: str, pods: list[LocalPod]) -> list[str]:
    release.wait_converged(zone, pods=pods)
    first, *others = [release.contents(pod, zone) for pod in pods]
    for pod, contents in zip(pods[1:], others, strict=True):
        assert contents == first, f"{pod.name} differs from {pods[0].name}"
    return first


def names_in(contents: list[str]) -> set[str]:
    return {line.split()[0] for line in contents}


def nsupdate_burst(release: LocalRelease, pod: LocalPod, prefix: str, count: int) -> None:
    """count separate signed updates (one `send` each) with BIND's own nsupdate."""
    commands = []
    for index in range(count):
        commands += [f"update add {prefix}{index}.dyn.test 300 A 192.0.2.{index % 250 + 1}", "send"]
    result = dnsclient.nsupdate(pod.address, DNS_PORT, "dyn.test", commands[:-1], release.update_key())
    assert result.returncode == 0, result.stderr


def dnspython_burst(release: LocalRelease, pod: LocalPod, prefix: str, count: int) -> None:
    for index in range(count):
        rcode = dnsclient.update(
            pod.address, DNS_PORT, "dyn.test", add={f"{prefix}{index}": "192.0.2.7"}, key=release.update_key()
        )
        assert rcode == "NOERROR", f"{prefix}{index}: {rcode}"


def test_bursts_of_200_updates_through_the_primary_and_a_secondary_leave_identical_replicas(
    release: LocalRelease,
) -> None:
    leader, followers = release.start_pods(3)
    everyone = [leader, *followers]
    nsupdate_burst(release, leader, "p-ns", 100)
    dnspython_burst(release, leader, "p-py", 100)
    contents = identical_everywhere(release, "dyn.test", everyone)
    assert {f"p-ns{i}" for i in range(100)} | {f"p-py{i}" for i in range(100)} <= names_in(contents)
    nsupdate_burst(release, followers[0], "s-ns", 100)  # forwarded by the secondary
    dnspython_burst(release, followers[0], "s-py", 100)
    contents = identical_everywhere(release, "dyn.test", everyone)
    assert {f"s-ns{i}" for i in range(100)} | {f"s-py{i}" for i in range(100)} <= names_in(contents)


def test_external_dns_and_cert_manager_paths(release: LocalRelease) -> None:
    """ExternalDNS lists records by AXFR with its update key; cert-manager adds then removes a TXT."""
    leader, followers = release.start_pods(2)
    listed = dnsclient.axfr(followers[0].address, DNS_PORT, "dyn.test", key=release.update_key())
    assert any(" SOA " in line for line in listed)
    challenge = ['update add _acme-challenge.www.dyn.test 60 TXT "token-123"']
    assert (
        dnsclient.nsupdate(
            followers[0].address, DNS_PORT, "dyn.test", challenge, release.update_key()
        ).returncode
        == 0
    )
    release.wait_converged("dyn.test")
    assert dnsclient.lookup(leader.address, DNS_PORT, "_acme-challenge.www.dyn.test", "TXT") == [
        '"token-123"'
    ]
    removal = ["update delete _acme-challenge.www.dyn.test TXT"]
    assert (
        dnsclient.nsupdate(leader.address, DNS_PORT, "dyn.test", removal, release.update_key()).returncode
        == 0
    )
    release.wait_converged("dyn.test")
    assert dnsclient.lookup(followers[0].address, DNS_PORT, "_acme-challenge.www.dyn.test", "TXT") == []


def test_a_crash_after_acknowledged_updates_promotes_the_most_current_pod_and_never_forks(
    release: LocalRelease,
) -> None:
    old, (ahead, behind) = release.start_pods(3)
    assert ahead.named_pid and behind.named_pid
    os.kill(behind.named_pid, signal.SIGSTOP)  # `behind` misses the next updates
    try:
        dnspython_burst(release, old, "acked", 5)
        release.wait_converged("dyn.test", pods=[old, ahead])
        os.kill(ahead.named_pid, signal.SIGSTOP)  # and now nobody but `old` sees this one
        dnspython_burst(release, old, "only-on-old", 1)
        old.crash()
    finally:
        os.kill(ahead.named_pid, signal.SIGCONT)
        os.kill(behind.named_pid, signal.SIGCONT)
    new = release.wait_for_leader(excluding=old, timeout=40)
    assert new is ahead, f"{new.name} was promoted, but {ahead.name} had more updates\n{release.logs_tail()}"
    survivors = [ahead, behind]
    contents = identical_everywhere(release, "dyn.test", survivors)
    assert {f"acked{i}" for i in range(5)} <= names_in(contents)  # every update a survivor had
    assert "only-on-old0" not in names_in(contents)
    dnspython_burst(release, new, "later", 1)
    assert "later0" in names_in(identical_everywhere(release, "dyn.test", survivors))
    # The old primary comes back with its forked history and must converge to the new one.
    old.start()
    release.wait_for_agents()
    contents = identical_everywhere(release, "dyn.test", [old, *survivors])
    assert "only-on-old0" not in names_in(contents) and "later0" in names_in(contents)


def test_a_graceful_switchover_under_a_stream_of_updates_loses_no_acknowledged_update(
    release: LocalRelease,
) -> None:
    old, survivors = release.start_pods(3)
    writer = Writer(
        lambda: [pod.address for pod in survivors], DNS_PORT, "dyn.test", release.update_key(), "w"
    )
    writer.start()
    time.sleep(1.5)
    old.stop()  # SIGTERM to named's supervisor, then to the agent, as the kubelet does
    new = release.wait_for_leader(excluding=old, timeout=20)
    time.sleep(2)
    writer.halt.set()
    writer.join()
    contents = names_in(identical_everywhere(release, "dyn.test", survivors))
    lost = [name for name in writer.acknowledged if name not in contents]
    acknowledged = len(writer.acknowledged)
    print(f"switchover to {new.name}: {writer.sent} sent, {acknowledged} acknowledged, {len(lost)} lost")
    assert len(writer.acknowledged) > 50
    assert lost == []


def serves(pod: LocalPod, name: str) -> list[str]:
    return dnsclient.lookup(pod.address, DNS_PORT, name)


def test_a_static_zone_edit_reaches_every_replica_within_5s_and_a_broken_edit_keeps_the_old_data(
    release: LocalRelease,
) -> None:
    leader, followers = release.start_pods(3)
    everyone = [leader, *followers]
    zones = [dict(zone) for zone in EXAMPLE_ZONES]
    zones[0]["records"] = "ns1 IN A 192.0.2.1\nwww IN A 192.0.2.81\n"
    edited = time.monotonic()
    release.write_zones(zones)
    while any(serves(pod, "www.example.test") != ["192.0.2.81"] for pod in everyone):
        assert time.monotonic() - edited < 5, "the edit did not reach every replica within 5 s"
        time.sleep(0.05)
    print(f"static edit served everywhere after {time.monotonic() - edited:.2f}s")
    agents_before = [pod.agent.pid for pod in everyone if pod.agent]
    zones[0]["records"] = "ns1 IN A 192.0.2.1\nwww IN A not-an-address\n"
    release.write_zones(zones)
    core = kubernetes.client.CoreV1Api(release.api_client)
    deadline = time.monotonic() + 10
    while not [e for e in core.list_namespaced_event(release.namespace).items if e.reason == "ZoneRejected"]:
        assert time.monotonic() < deadline, "no ZoneRejected event"
        time.sleep(0.1)
    event = next(e for e in core.list_namespaced_event(release.namespace).items if e.reason == "ZoneRejected")
    assert "zone example.test" in event.message and "records line 2" in event.message
    for pod in everyone:
        deadline = time.monotonic() + 10
        while 'bind_ha_zone_source_valid{zone="example.test"} 0' not in pod_metrics(pod):
            assert time.monotonic() < deadline, f"{pod.name} never reported the rejected source"
            time.sleep(0.1)
        assert serves(pod, "www.example.test") == ["192.0.2.81"]
    assert [pod.agent.pid for pod in everyone if pod.agent] == agents_before  # nothing restarted


def pod_metrics(pod: LocalPod) -> str:
    with urllib.request.urlopen(f"http://{pod.address}:{HEALTH_PORT}/metrics", timeout=5) as reply:
        return reply.read().decode()


def test_zones_are_added_and_removed_on_every_pod_without_a_restart(release: LocalRelease) -> None:
    leader, followers = release.start_pods(3)
    everyone = [leader, *followers]
    reverse = {
        "name": "2.0.192.in-addr.arpa",
        "nameservers": ["ns1.example.test."],
        "records": "80 IN PTR www.example.test.\n",
    }
    release.write_zones([*EXAMPLE_ZONES, reverse])
    (release.zones_dir / "dir.test.zone").write_text(
        "$TTL 60\n@ IN SOA ns1.example.test. host.dir.test. 5 60 60 600 60\n@ IN NS ns1.example.test.\n"
        "www IN A 192.0.2.90\n"
    )
    deadline = time.monotonic() + 10
    while any(
        dnsclient.lookup(pod.address, DNS_PORT, "80.2.0.192.in-addr.arpa", "PTR") != ["www.example.test."]
        or serves(pod, "www.dir.test") != ["192.0.2.90"]
        for pod in everyone
    ):
        assert time.monotonic() < deadline, f"new zones not served everywhere\n{release.logs_tail()}"
        time.sleep(0.1)
    release.write_zones(EXAMPLE_ZONES)
    (release.zones_dir / "dir.test.zone").unlink()
    deadline = time.monotonic() + 10
    while any(
        dnsclient.serial(pod.address, DNS_PORT, zone) is not None
        for pod in everyone
        for zone in ("2.0.192.in-addr.arpa", "dir.test")
    ):
        assert time.monotonic() < deadline, "removed zones still served"
        time.sleep(0.1)
    assert dnsclient.serial(leader.address, DNS_PORT, "example.test") is not None


def test_a_restarted_pod_keeps_its_dynamic_data_and_is_unready_until_in_step(release: LocalRelease) -> None:
    leader, (follower, _other) = release.start_pods(3)
    dnspython_burst(release, leader, "before", 3)
    release.wait_converged("dyn.test")
    follower.stop()
    dnspython_burst(release, leader, "during", 3)
    assert leader.named_pid

    os.kill(leader.named_pid, signal.SIGSTOP)  # the restarted pod cannot catch up for a moment
    try:
        follower.start()
        time.sleep(3)
        # It serves the data it had (never an empty zone) but is not ready: that data is old.
        assert dnsclient.lookup(follower.address, DNS_PORT, "before0.dyn.test") == ["192.0.2.7"]
        assert dnsclient.lookup(follower.address, DNS_PORT, "during0.dyn.test") == []
        verdict = follower.probe()
        assert not verdict.ready and "dyn.test: not yet in step with the primary" in verdict.text, verdict
    finally:
        os.kill(leader.named_pid, signal.SIGCONT)
    release.wait_converged("dyn.test")
    deadline = time.monotonic() + 10
    while not follower.probe().ready:
        assert time.monotonic() < deadline, follower.probe().text
        time.sleep(0.2)
    assert dnsclient.lookup(follower.address, DNS_PORT, "during0.dyn.test") == ["192.0.2.7"]


def test_a_whole_release_restarted_on_its_data_keeps_every_dynamic_record(release: LocalRelease) -> None:
    leader, followers = release.start_pods(3)
    dnspython_burst(release, leader, "kept", 10)
    everyone = [leader, *followers]
    before = identical_everywhere(release, "dyn.test", everyone)
    for pod in everyone:
        pod.stop()
    for pod in everyone:
        pod.start()
    release.wait_for_leader()
    release.wait_for_agents()
    after = identical_everywhere(release, "dyn.test", everyone)
    assert {f"kept{i}" for i in range(10)} <= names_in(after)
    assert names_in(before) <= names_in(after)
