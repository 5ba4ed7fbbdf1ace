"""`helm upgrade` and `helm rollback` of a live release, under load from a client pod
(lookups through the DNS Service, ~20 signed updates/s through the primary Service):

1. a change of zones only: applied live by the agents (every pod serves it, no pod restarts);
2. values that roll every pod (a pod annotation and named's resources) with another zone
   change: the rollout completes, no lookup fails, no acknowledged update is lost, one primary;
3. `helm rollback` to the first revision: every pod rolls back and the zone change is
   undone, with the same guarantees.

One release for the module; the tests run in order.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_helm_charts.clusters import Cluster

from tests.e2e.conftest import MEASURED, TIMINGS
from tests.harness.release import Kube, Release, wait_for
from tests.harness.scenarios import STATIC, Scenario, Switch, roll, settle, values_file, zones
from tests.harness.tools import tool

ADDED = f"added.{STATIC}"
ADDED_ADDRESS = "192.0.2.99"
ROLLED = f"rolled.{STATIC}"
ROLLED_ADDRESS = "192.0.2.98"
MIN_QUERY_RATE = 80.0


@pytest.fixture(scope="module")
def scenario(kube: Kube, kube_cluster: Cluster, image: str) -> Iterator[Scenario]:
    scenario = Scenario.install(kube, image, prefix="e2e-upgrade")
    yield scenario
    scenario.delete()


def served_everywhere(scenario: Scenario, name: str, address: str | None) -> bool:
    """name answers `address` on every pod (None: NXDOMAIN on every pod), authoritatively."""
    for ip in scenario.release.pod_ips().values():
        answer = scenario.client.dig(ip, name, "A", port=5353)
        if not answer.authoritative:
            return False
        if address is None and answer.status != "NXDOMAIN":
            return False
        if address is not None and answer.answers != (address,):
            return False
    return True


def healthy(release: Release) -> bool:
    """`bind-ha status`: one healthy primary holding the Lease, every ready secondary in step."""
    result = subprocess.run(
        [
            tool("bind-ha"),
            "status",
            release.name,
            "-n",
            release.namespace,
            "--kubeconfig",
            release.kube.kubeconfig,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return result.returncode == 0


def check(scenario: Scenario, switch: Switch) -> None:
    summary = switch.summary
    assert summary.query_rate >= MIN_QUERY_RATE, summary.describe()
    assert summary.acknowledged, summary.describe()
    assert summary.failed_queries == 0, summary.describe()
    assert switch.lost == {}, summary.describe()
    assert len(scenario.release.primaries()) == 1, scenario.release.roles()
    wait_for("bind-ha status to report the release healthy", lambda: healthy(scenario.release), timeout=60)


def upgrade_values(extra: str, **values: Any) -> str:
    return values_file({"zones": zones(extra_static=extra), **values})


def test_a_zone_change_applies_live_without_restarting_a_pod(scenario: Scenario) -> None:
    release = scenario.release
    uids = {pod["metadata"]["uid"] for pod in release.pods()}
    restarts = {pod: release.restarts(pod) for pod in release.roles()}
    with scenario.load("zones") as load:
        changed_at = time.monotonic()
        release.upgrade(upgrade_values(f"added IN A {ADDED_ADDRESS}\n"))
        wait_for(f"{ADDED} on every pod", lambda: served_everywhere(scenario, ADDED, ADDED_ADDRESS), 180)
        TIMINGS["helm upgrade of the zones: served by every pod after"] = time.monotonic() - changed_at
        settle(2)
        summary = load.stop()
    MEASURED["helm upgrade of the zones, load"] = summary.brief()
    assert {pod["metadata"]["uid"] for pod in release.pods()} == uids, "a zone change must not replace pods"
    assert {pod: release.restarts(pod) for pod in release.roles()} == restarts
    check(scenario, Switch("zones", "", "", 0, 0, 0, summary, scenario.lost(summary, "zones")))


def test_an_upgrade_that_rolls_every_pod_loses_nothing(scenario: Scenario) -> None:
    release = scenario.release
    values = upgrade_values(
        f"added IN A {ADDED_ADDRESS}\nrolled IN A {ROLLED_ADDRESS}\n",
        podAnnotations={"e2e.bind-ha.io/revision": "3"},
        resources={"requests": {"cpu": "60m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
    )
    switch = roll(scenario, lambda: release.upgrade(values), "upgrade")
    TIMINGS["helm upgrade rolling 3 pods: rollout complete after"] = switch.done_after
    TIMINGS["helm upgrade rolling 3 pods: longest write gap"] = switch.summary.write_outage
    MEASURED["helm upgrade rolling every pod, load"] = switch.summary.brief()
    wait_for(f"{ROLLED} on every pod", lambda: served_everywhere(scenario, ROLLED, ROLLED_ADDRESS), 120)
    for pod in release.pods():
        assert pod["metadata"]["annotations"]["e2e.bind-ha.io/revision"] == "3"
        named = next(c for c in pod["spec"]["containers"] if c["name"] == "named")
        assert named["resources"]["requests"]["cpu"] == "60m"
    check(scenario, switch)


def test_a_rollback_rolls_back_every_pod_the_same_way(scenario: Scenario) -> None:
    release = scenario.release
    switch = roll(scenario, lambda: release.rollback(1), "rollback")
    TIMINGS["helm rollback rolling 3 pods: rollout complete after"] = switch.done_after
    TIMINGS["helm rollback rolling 3 pods: longest write gap"] = switch.summary.write_outage
    MEASURED["helm rollback, load"] = switch.summary.brief()
    for name in (ADDED, ROLLED):
        wait_for(f"{name} gone from every pod", lambda n=name: served_everywhere(scenario, n, None), 120)
    for pod in release.pods():
        assert "e2e.bind-ha.io/revision" not in pod["metadata"].get("annotations", {})
    check(scenario, switch)
