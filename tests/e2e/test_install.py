"""Every values example and every chart/ci file on real pods, each in a namespace enforcing
the `restricted` Pod Security Standard: all pods Ready, exactly one primary, `helm test`
passes, no start-up noise (ReconfigureFailed, rndc `connection refused`, failed probes); and
`ct install`."""

from __future__ import annotations

import os
import pathlib
import subprocess
import time
from collections.abc import Callable

import pytest
from pytest_helm_charts.clusters import Cluster
from pytest_helm_charts.k8s.stateful_set import wait_for_stateful_sets_to_run

from tests.chart.helm import ct_install_files, example_files
from tests.e2e.conftest import TIMINGS
from tests.harness.release import Kube, Release, wait_for
from tests.harness.tools import REPO, tool

READY_TIMEOUT = 300

# What a one-node test cluster cannot give an example as it stands, and the least change
# that lets it run (every other value is the example's own).
ONE_NODE = {
    # Hard anti-affinity wants three nodes.
    "loadbalancer.yaml": ["--set", "antiAffinity=soft"],
    # A registry's image, three nodes, and bind_exporter's image and the ServiceMonitor CRD,
    # which no registry can bring here.
    "production.yaml": [
        "--set",
        "image.repository=localhost/bind-ha",
        "--set",
        "antiAffinity=soft",
        "--set",
        "metrics.exporter.enabled=false",
        "--set",
        "metrics.serviceMonitor.enabled=false",
    ],
}

EXAMPLE_NET_ZONE = """$TTL 300
@   IN SOA ns1.example.net. hostmaster.example.net. 1 3600 600 1209600 300
@   IN NS  ns1.example.net.
ns1 IN A   192.0.2.53
www IN A   192.0.2.81
"""


def zones_configmap(kube: Kube, namespace: str) -> None:
    """existing-zones-configmap.yaml's ConfigMap, made as its header says."""
    kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "dns-zones", "namespace": namespace},
                "data": {"example.net.zone": EXAMPLE_NET_ZONE},
            }
        ]
    )


def zone_files_claim(kube: Kube, namespace: str) -> None:
    """What zones-volume-values.yaml expects to exist: the ServiceAccount ct-dns and a claim
    ct-zone-files holding NAME.zone files (written into the provisioned hostPath directory)."""
    kube.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "ct-dns", "namespace": namespace},
            },
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "ct-zone-files", "namespace": namespace},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Mi"}}},
            },
        ]
    )

    def bound() -> bool:
        return kube.get(namespace, "pvc", "ct-zone-files")["status"].get("phase") == "Bound"

    wait_for("the zone files claim to be bound", bound, timeout=60)
    volume = kube.get(namespace, "pvc", "ct-zone-files")["spec"]["volumeName"]
    directory = pathlib.Path(kube.get("default", "pv", volume)["spec"]["hostPath"]["path"])
    zone = directory / "volume.ct.example.zone"
    zone.write_text(EXAMPLE_NET_ZONE.replace("example.net", "volume.ct.example"))
    zone.chmod(0o644)


PREPARE: dict[str, Callable[[Kube, str], None]] = {
    "existing-zones-configmap.yaml": zones_configmap,
    "zones-volume-values.yaml": zone_files_claim,
}


def check_release(release: Release, kube: Kube) -> None:
    """One primary; helm test passes; the start was clean."""
    release.wait_one_primary()
    tested = release.test()
    assert tested.returncode == 0 and ", 0 failed" in tested.stdout, tested.stdout + tested.stderr
    assert len(release.primaries()) == 1, release.roles()
    assert kube.warning_events(release.namespace, "ReconfigureFailed") == []
    # The kubelet records every failed probe as a Warning (reason Unhealthy): a normal start
    # records none (the agent serves /healthz before its imports; probes wait at start), but
    # on a busy node the interpreter may not have opened its port by the first startup probe.
    failed_probes = kube.warning_events(release.namespace, "Unhealthy")
    assert all(not_yet_listening(event) for event in failed_probes), failed_probes
    assert len(failed_probes) <= len(release.pods()), failed_probes
    for pod in release.pods():
        agent_log = release.logs(pod["metadata"]["name"], "agent")
        assert "connection refused" not in agent_log, agent_log


def not_yet_listening(event: str) -> bool:
    """A startup probe that found the port not yet open: harmless (failureThreshold allows it)."""
    return "Startup probe failed" in event and "connection refused" in event


@pytest.mark.parametrize("values", [*example_files(), *ct_install_files()], ids=lambda path: path.name)
def test_install_on_real_pods(
    values: pathlib.Path, kube: Kube, kube_cluster: Cluster, namespace: str
) -> None:
    if values.name in PREPARE:
        PREPARE[values.name](kube, namespace)
    release = Release(kube, namespace)
    started = time.monotonic()
    release.install(str(values), options=ONE_NODE.get(values.name, ()))
    wait_for_stateful_sets_to_run(kube_cluster.kube_client, [release.fullname], namespace, READY_TIMEOUT)
    TIMINGS[f"install to all pods Ready: {values.name}"] = time.monotonic() - started
    check_release(release, kube)
    release.uninstall()


def test_ct_install(kube: Kube, namespace: str) -> None:
    """chart-testing installs every ci/*-values.yaml (and runs helm test) in a restricted namespace."""
    zone_files_claim(kube, namespace)
    started = time.monotonic()
    result = subprocess.run(
        [tool("ct"), "install", "--config", "ct.yaml", "--charts", "chart", "--namespace", namespace],
        cwd=REPO,
        env={**os.environ, "KUBECONFIG": kube.kubeconfig},
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    TIMINGS["ct install"] = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "All charts installed successfully" in output, output[-3000:]
    for values in ct_install_files():
        assert f"ci/{values.name}" in output, f"ct did not install {values.name}"
    assert "lint-only" not in output
