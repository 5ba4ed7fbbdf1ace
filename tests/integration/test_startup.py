"""A pod's start: the agent (a native sidecar) runs before named, and must neither send
rndc commands nor stand for election until named's control channel answers."""

from __future__ import annotations

import re
import urllib.request

import kubernetes

from tests.harness.pods import HEALTH_PORT, LocalPod, LocalRelease
from tests.harness.release import wait_for


def rounds(pod: LocalPod) -> int:
    with urllib.request.urlopen(f"http://{pod.address}:{HEALTH_PORT}/metrics", timeout=5) as reply:
        found = re.search(r"^bind_ha_rounds_total (\d+)", reply.read().decode(), re.MULTILINE)
    return int(found.group(1)) if found else 0


def ran_rounds(pod: LocalPod, count: int) -> bool:
    try:
        return rounds(pod) >= count
    except OSError:
        return False  # not serving yet


def test_the_agent_waits_for_named_before_rndc_and_candidacy(release: LocalRelease) -> None:
    (pod,) = release.add_pods(1)
    pod.run_init()
    pod.start_agent()  # named's container has not started yet
    wait_for("ten rounds of the agent without named", lambda: ran_rounds(pod, 10), timeout=60)
    assert release.holder() is None, "an agent whose named is not up is no candidate"
    assert "waiting for named's control channel: not a candidate" in pod.log_text()

    pod.start_named()
    assert release.wait_for_leader() is pod
    agent_log = pod.log_text()
    assert "connection refused" not in agent_log and "connect failed" not in agent_log, agent_log
    events = kubernetes.client.CoreV1Api(release.api_client).list_namespaced_event(release.namespace)
    assert [e.message for e in events.items if e.reason == "ReconfigureFailed"] == []
