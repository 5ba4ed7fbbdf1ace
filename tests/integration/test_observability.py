"""/healthz, /readyz, /metrics, Kubernetes Events and named's readiness probe, on real processes."""

from __future__ import annotations

import time
import urllib.request

import kubernetes

from tests.harness import dnsclient
from tests.harness.pods import DNS_PORT, HEALTH_PORT, LocalPod, LocalRelease


def get(pod: LocalPod, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{pod.address}:{HEALTH_PORT}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in metrics:\n{text}")


def test_health_readiness_and_metrics_endpoints(release: LocalRelease) -> None:
    pods = release.add_pods(2)
    for pod in pods:
        pod.start()
    leader = release.wait_for_leader()
    release.wait_for_agents()
    (follower,) = [pod for pod in pods if pod is not leader]
    for pod in pods:
        assert get(pod, "/healthz")[0] == 200
        assert get(pod, "/readyz") == (200, "ok: configured\n")
        assert get(pod, "/nope")[0] == 404
    leader_metrics, follower_metrics = get(leader, "/metrics")[1], get(follower, "/metrics")[1]
    assert metric(leader_metrics, "bind_ha_is_leader") == 1
    assert metric(follower_metrics, "bind_ha_is_leader") == 0
    assert metric(leader_metrics, "bind_ha_leader_transitions_total") == 1
    assert 0 <= metric(leader_metrics, "bind_ha_seconds_since_last_renew") < release.timing.lease_duration
    assert metric(follower_metrics, "bind_ha_seconds_since_last_renew") == -1
    assert metric(leader_metrics, "bind_ha_reconfigurations_total") >= 1
    assert metric(leader_metrics, "bind_ha_reconfiguration_failures_total") == 0
    assert metric(leader_metrics, "bind_ha_api_requests_total") > 0
    serial = dnsclient.serial(leader.address, DNS_PORT, "example.test")
    assert f'bind_ha_zone_serial{{zone="example.test"}} {serial}' in leader_metrics
    assert "# TYPE bind_ha_is_leader gauge" in leader_metrics


def test_transitions_are_posted_as_kubernetes_events(release: LocalRelease) -> None:
    pods = release.add_pods(2)
    for pod in pods:
        pod.start()
    leader = release.wait_for_leader()
    core = kubernetes.client.CoreV1Api(release.api_client)
    deadline = time.monotonic() + 10
    while True:
        events = core.list_namespaced_event(release.namespace).items
        promoted = [e for e in events if e.reason == "Promoted" and e.involved_object.name == leader.name]
        if promoted:
            break
        assert time.monotonic() < deadline, [(e.reason, e.involved_object.name) for e in events]
        time.sleep(0.1)
    assert promoted[0].involved_object.uid == leader.uid
    assert promoted[0].source.component == "bind-ha-agent"


def test_named_readiness_probe_needs_every_zone_to_answer_authoritatively(release: LocalRelease) -> None:
    (pod,) = release.add_pods(1)
    pod.start()
    release.wait_for_leader()
    deadline = time.monotonic() + 10
    while not (ready := pod.probe()).ready:  # ready once the agent marks its zones in step
        assert time.monotonic() < deadline, ready.text
        time.sleep(0.2)
    assert ready.text == "ok: ready"
    # A zone named.conf lists but named cannot serve makes the pod unready.
    (pod.run_dir / "zones.json").write_text('[{"name": "missing.test", "dynamic": false, "synced": true}]')
    unready = pod.probe()
    assert unready.status == 503 and "missing.test: REFUSED" in unready.text


def test_the_primary_notifies_pods_as_they_come_and_go(release: LocalRelease) -> None:
    pods = release.add_pods(2)
    for pod in pods:
        pod.start()
    leader = release.wait_for_leader()
    (late,) = release.add_pods(1)
    late.start()
    deadline = time.monotonic() + 10
    while late.address not in (leader.run_dir / "named.conf").read_text():
        assert time.monotonic() < deadline, "the new pod never joined also-notify"
        time.sleep(0.05)
    # A change on the primary reaches the newcomer by NOTIFY at once.
    key = ("bind-ha-update", release.secret("update-secret"))
    assert (
        dnsclient.update(leader.address, DNS_PORT, "dyn.test", add={"late": "192.0.2.40"}, key=key)
        == "NOERROR"
    )
    deadline = time.monotonic() + 2
    while dnsclient.lookup(late.address, DNS_PORT, "late.dyn.test") != ["192.0.2.40"]:
        assert time.monotonic() < deadline, "NOTIFY did not reach the new pod"
        time.sleep(0.01)
    late.stop()
    release.core.delete_namespaced_pod(late.name, release.namespace, grace_period_seconds=0)
    deadline = time.monotonic() + 10
    while late.address in (leader.run_dir / "named.conf").read_text():
        assert time.monotonic() < deadline, "the departed pod stayed in also-notify"
        time.sleep(0.05)
