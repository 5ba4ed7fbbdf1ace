"""The operator's Role against a real kube-apiserver: a user bound to it can run `bind-ha status`,
`bind-ha pause` and `bind-ha client-config`, and can do nothing else with pods, Secrets or
other Leases. The chart is installed for real (no kubelet: its pods exist but never run).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
from collections.abc import Iterator

import kubernetes
import pytest
import yaml

from bind_ha import requests
from tests.apiserver.test_chart_release import Cluster, lease_manifest, run, wait_for
from tests.chart.helm import CHART, MINIMAL_ZONES
from tests.harness.tools import tool

RELEASE = "dns"
FULLNAME = f"{RELEASE}-bind-ha"
LEASE = f"{FULLNAME}-leader"
OPERATOR = "ops"


@pytest.fixture(scope="module")
def cluster(kube_config: str, api_client: kubernetes.client.ApiClient) -> Cluster:
    return Cluster(kube_config, api_client)


@pytest.fixture(scope="module")
def installed(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, pathlib.Path]]:
    """The chart with the operator Role bound to ServiceAccount `ops`; yields (namespace, ops' kubeconfig)."""
    namespace = cluster.restricted_namespace("operator")
    directory = tmp_path_factory.mktemp("operator")
    values = {
        "replicaCount": 2,
        "zones": MINIMAL_ZONES,
        "tsig": {"algorithm": "hmac-sha384", "updateKeyName": "externaldns"},
        "rbac": {
            "operator": {
                "create": True,
                "subjects": [{"kind": "ServiceAccount", "name": OPERATOR, "namespace": namespace}],
            }
        },
    }
    (directory / "values.yaml").write_text(yaml.safe_dump(values))
    cluster.helm(namespace, "install", RELEASE, str(CHART), "-f", str(directory / "values.yaml"))
    core = kubernetes.client.CoreV1Api(cluster.api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": OPERATOR}})
    token = core.create_namespaced_service_account_token(
        OPERATOR, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    configuration = cluster.api.configuration
    kubeconfig = directory / "ops.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {
                            "server": configuration.host,
                            "certificate-authority": configuration.ssl_ca_cert,
                        },
                    }
                ],
                "users": [{"name": OPERATOR, "user": {"token": token}}],
                "contexts": [
                    {"name": "ops", "context": {"cluster": "c", "user": OPERATOR, "namespace": namespace}}
                ],
                "current-context": "ops",
            }
        )
    )
    wait_for("the StatefulSet's pods", lambda: len(cluster.pods(namespace)) == 2)
    # what a running agent would have made
    cluster.kubectl(namespace, "create", "-f", "-", stdin=lease_manifest(LEASE, f"{FULLNAME}-0/uid"))
    yield namespace, kubeconfig
    cluster.helm(namespace, "uninstall", RELEASE, check=False)


def bind_ha(kubeconfig: pathlib.Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("bind-ha"), "--kubeconfig", str(kubeconfig), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_operator_can_run_status(installed: tuple[str, pathlib.Path]) -> None:
    _namespace, kubeconfig = installed
    result = bind_ha(kubeconfig, "status", "-o", "json")
    assert "forbidden" not in result.stderr, result.stderr
    assert result.returncode == 1, "pods that never ran are no healthy primary"
    document = json.loads(result.stdout)
    assert [pod["name"] for pod in document["pods"]] == [f"{FULLNAME}-0", f"{FULLNAME}-1"]
    assert document["lease"]["name"] == LEASE
    assert document["lease"]["holderPod"] is None  # the holder's UID is not a pod's
    assert any("no pod is labelled primary" in problem for problem in document["problems"])


def test_operator_can_pause_and_resume(cluster: Cluster, installed: tuple[str, pathlib.Path]) -> None:
    namespace, kubeconfig = installed
    paused = bind_ha(kubeconfig, "pause", "--reason", "node maintenance")
    assert paused.returncode == 0, paused.stderr
    assert paused.stderr == "", "the audit Event was posted"
    lease = cluster.get(namespace, "lease", LEASE)
    assert lease is not None
    found = requests.read(lease["metadata"]["annotations"])
    assert found.pause is not None
    assert (found.pause.by, found.pause.reason) == (
        f"system:serviceaccount:{namespace}:{OPERATOR}",
        "node maintenance",
    )
    events = cluster.kubectl(namespace, "get", "events", "-o", "json").stdout
    assert "PauseRequested" in events
    resumed = bind_ha(kubeconfig, "resume")
    assert resumed.returncode == 0, resumed.stderr
    lease = cluster.get(namespace, "lease", LEASE)
    assert lease is not None and not requests.read(lease["metadata"].get("annotations")).paused


def test_operator_can_read_client_settings_but_not_the_secret(installed: tuple[str, pathlib.Path]) -> None:
    namespace, kubeconfig = installed
    external_dns = bind_ha(kubeconfig, "client-config", "external-dns", "--zone", "example.com")
    assert external_dns.returncode == 0, external_dns.stderr
    assert f"--rfc2136-host={FULLNAME}-primary.{namespace}.svc" in external_dns.stdout
    assert "--rfc2136-tsig-keyname=externaldns" in external_dns.stdout
    assert "--rfc2136-tsig-secret-alg=hmac-sha384" in external_dns.stdout
    assert f"kubectl get secret -n {namespace} {FULLNAME}-tsig" in external_dns.stdout
    cert_manager = bind_ha(kubeconfig, "client-config", "cert-manager")
    assert cert_manager.returncode == 1
    assert "refused: cert-manager cannot use hmac-sha384" in cert_manager.stderr
    secret = run(
        tool("kubectl"), f"--kubeconfig={kubeconfig}", "get", "secret", f"{FULLNAME}-tsig", check=False
    )
    assert secret.returncode != 0 and "forbidden" in secret.stderr.lower()


ALLOWED = [
    ("list", "pods"),
    ("get", f"leases.coordination.k8s.io/{LEASE}"),
    ("patch", f"leases.coordination.k8s.io/{LEASE}"),
    ("create", "events"),
    ("list", "statefulsets.apps"),
    ("list", "services"),
]
DENIED = [
    ("get", f"pods/{FULLNAME}-0"),
    ("watch", "pods"),
    ("create", "pods"),
    ("update", "pods"),
    ("patch", "pods"),
    ("delete", "pods"),
    ("deletecollection", "pods"),
    ("create", "pods#exec"),
    ("create", "pods#eviction"),
    ("get", "pods#log"),
    ("patch", "pods#status"),
    ("get", "secrets"),
    ("list", "secrets"),
    ("get", "configmaps"),
    ("update", f"leases.coordination.k8s.io/{LEASE}"),
    ("delete", f"leases.coordination.k8s.io/{LEASE}"),
    ("patch", "leases.coordination.k8s.io/another-lease"),
    ("list", "leases.coordination.k8s.io"),
    ("patch", "statefulsets.apps"),
    ("delete", "services"),
    ("patch", "events"),
]


def can_i(cluster: Cluster, namespace: str, verb: str, resource: str) -> bool:
    resource, _, subresource = resource.partition("#")
    extra = [f"--subresource={subresource}"] if subresource else []
    result = cluster.kubectl(
        namespace, "auth", "can-i", verb, resource, *extra,
        f"--as=system:serviceaccount:{namespace}:{OPERATOR}", check=False,
    )  # fmt: skip
    answer = result.stdout.strip()
    assert answer in ("yes", "no"), f"can-i {verb} {resource}: {result.stdout} {result.stderr}"
    return answer == "yes"


@pytest.mark.parametrize(("verb", "resource"), ALLOWED, ids=[f"{v} {r}" for v, r in ALLOWED])
def test_operator_may(
    cluster: Cluster, installed: tuple[str, pathlib.Path], verb: str, resource: str
) -> None:
    assert can_i(cluster, installed[0], verb, resource)


@pytest.mark.parametrize(("verb", "resource"), DENIED, ids=[f"{v} {r}" for v, r in DENIED])
def test_operator_may_not(
    cluster: Cluster, installed: tuple[str, pathlib.Path], verb: str, resource: str
) -> None:
    assert not can_i(cluster, installed[0], verb, resource)
