"""Dynamic zone data across the loss of every pod, and what `helm uninstall` leaves behind.

- With `persistence.enabled`, every pod deleted at once: the records added by signed updates
  are served by every new pod (each pod's zone file and journal are on its own volume).
- Without it, the same deletion loses the records; no pod becomes primary until an operator
  asks for a reseed, which seeds the dynamic zone from values again.
- `helm uninstall` leaves exactly what the README's "Uninstalling" table lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence

import pytest
from pytest_helm_charts.clusters import Cluster

from tests.e2e.conftest import MEASURED
from tests.harness.release import Kube, Release, wait_for
from tests.harness.scenarios import DYNAMIC, Scenario, settle
from tests.harness.tools import REPO

RECOVERY_TIMEOUT = 300
# Namespace objects that are no release's: made by Kubernetes for every namespace.
NAMESPACE_DEFAULTS = {("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")}


@pytest.fixture(scope="module")
def persistent(kube: Kube, kube_cluster: Cluster, image: str) -> Iterator[Scenario]:
    scenario = Scenario.install(
        kube, image, prefix="e2e-persist", values={"persistence": {"enabled": True, "size": "50Mi"}}
    )
    yield scenario
    scenario.delete()


def write_records(scenario: Scenario, tag: str) -> list[str]:
    """A few seconds of signed updates through the primary Service; the acknowledged names,
    once every pod serves them."""
    with scenario.load(tag, warm_up=0) as load:
        settle(4)
        summary = load.stop()
    assert len(summary.acknowledged) >= 20, summary.describe()
    assert scenario.lost(summary, tag) == {}, summary.describe()
    return summary.acknowledged


def delete_every_pod(release: Release) -> None:
    uids = [pod["metadata"]["uid"] for pod in release.pods()]
    release.kube.kubectl("-n", release.namespace, "delete", "pod", "-l", release.selector, "--wait=false")
    release.wait_all_ready(gone=uids, timeout=RECOVERY_TIMEOUT)
    release.wait_one_primary(timeout=RECOVERY_TIMEOUT)


def test_dynamic_data_survives_deleting_every_pod_at_once(persistent: Scenario) -> None:
    release = persistent.release
    claims = persistent.release.kube.get(release.namespace, "pvc")["items"]
    assert len(claims) == 3 and all(c["status"]["phase"] == "Bound" for c in claims), claims
    written = write_records(persistent, "persist")
    delete_every_pod(release)
    persistent.wait_services()
    missing = persistent.lost_names(written, "persist")
    MEASURED["persistence: records written, then every pod deleted at once"] = (
        f"{len(written)} written, missing afterwards: {missing or 'none'}"
    )
    assert missing == {}


def standing_aside(release: Release, old_uids: Sequence[str]) -> set[str]:
    """The new pods (not in old_uids) whose agent posted a StandingAside Event: no copy of a
    dynamic zone that held data, so not a candidate."""
    events = release.kube.get(release.namespace, "events", "--field-selector", "reason=StandingAside")
    return {
        event["involvedObject"]["name"]
        for event in events["items"]
        if event["involvedObject"].get("uid") not in old_uids
    }


def test_without_persistence_losing_every_pod_leaves_no_primary_until_a_reseed(
    kube: Kube, kube_cluster: Cluster, image: str
) -> None:
    """What the README's troubleshooting table warns about: without volumes, a dynamic zone
    outlives pods only while one of them keeps it. Once every copy is gone, no election seeds
    it again on its own (that would pass an empty zone off as the real one): the new pods stand
    aside, without a primary, until an operator asks for a reseed on the Lease."""
    scenario = Scenario.install(kube, image, prefix="e2e-nopersist")
    release = scenario.release
    try:
        written = write_records(scenario, "gone")
        uids = [pod["metadata"]["uid"] for pod in release.pods()]
        kube.kubectl("-n", release.namespace, "delete", "pod", "-l", release.selector, "--wait=false")
        wait_for(
            "every new pod to stand aside",
            lambda: len(standing_aside(release, uids)) == 3,
            timeout=RECOVERY_TIMEOUT,
        )
        assert release.primaries() == [], release.roles()
        lease = f"{release.fullname}-leader"
        kube.kubectl("-n", release.namespace, "annotate", "lease", lease, f"bind-ha.io/reseed={DYNAMIC}")
        release.wait_one_primary(timeout=RECOVERY_TIMEOUT)
        release.wait_all_ready(gone=uids, timeout=RECOVERY_TIMEOUT)
        scenario.wait_services()
        missing = scenario.lost_names(written, "gone", timeout=5)
        assert set(missing) == set(release.roles()), missing  # the records are gone from every pod
        assert all(sorted(names) == sorted(written) for names in missing.values()), missing
        annotations = kube.get(release.namespace, "lease", lease)["metadata"].get("annotations", {})
        assert "bind-ha.io/reseed" not in annotations, annotations  # settled by the new primary
        assert annotations.get("bind-ha.io/zones-with-data") == DYNAMIC, annotations
    finally:
        scenario.delete()


def readme_leftovers(release: Release) -> list[tuple[str, re.Pattern[str]]]:
    """(kind, name pattern) of each row of the README's uninstall table."""
    text = (REPO / "README.md").read_text()
    table = text.split("<!-- uninstall-leftovers -->", 1)[1].split("<!-- /uninstall-leftovers -->", 1)[0]
    rows = []
    for line in table.strip().splitlines()[2:]:
        kind, name = (cell.strip() for cell in line.strip("|").split("|")[:2])
        if "`" not in name:  # e.g. Events: any name
            rows.append((kind, re.compile(".*")))
            continue
        pattern = re.escape(name.split("`")[1]).replace("RELEASE", release.name).replace("N", r"\d+")
        rows.append((kind, re.compile(pattern)))
    return rows


def namespace_objects(kube: Kube, namespace: str) -> set[tuple[str, str]]:
    """(kind, name) of every object in the namespace, of every namespaced type that lists."""
    types = kube.kubectl("api-resources", "--verbs=list", "--namespaced", "-o", "name").stdout.split()
    found = json.loads(kube.kubectl("-n", namespace, "get", ",".join(types), "-o", "json").stdout)["items"]
    return {(item["kind"], item["metadata"]["name"]) for item in found}


def test_helm_uninstall_leaves_only_what_the_readme_lists(persistent: Scenario, kube: Kube) -> None:
    release = persistent.release
    policy = f"{release.namespace}.{release.fullname}.bind-ha.io"
    assert kube.kubectl("get", "validatingadmissionpolicy", policy, check=False).returncode == 0
    persistent.client.delete()
    wait_for(
        "the client pod to go",
        lambda: kube.kubectl("-n", release.namespace, "get", "pod", "client", check=False).returncode != 0,
        timeout=120,
    )
    release.uninstall()
    wait_for("the release's pods to go", lambda: release.pods() == [], timeout=RECOVERY_TIMEOUT)
    left = {
        (kind, name)
        for kind, name in namespace_objects(kube, release.namespace)
        if kind != "Event" and (kind, name) not in NAMESPACE_DEFAULTS
    }
    listed = readme_leftovers(release)
    unlisted = {
        (kind, name) for kind, name in left if not any(k == kind and p.fullmatch(name) for k, p in listed)
    }
    assert unlisted == set(), f"helm uninstall left what the README does not list: {sorted(unlisted)}"
    kinds = {kind for kind, _ in left}
    assert kinds == {kind for kind, _ in listed if kind != "Event"}, sorted(left)
    assert sum(1 for kind, _ in left if kind == "PersistentVolumeClaim") == 3, sorted(left)
    # Nothing cluster-scoped is left of the release.
    assert kube.kubectl("get", "validatingadmissionpolicy", policy, check=False).returncode != 0
    assert kube.kubectl("get", "validatingadmissionpolicybinding", policy, check=False).returncode != 0
    MEASURED["helm uninstall leaves"] = ", ".join(f"{kind}/{name}" for kind, name in sorted(left))
