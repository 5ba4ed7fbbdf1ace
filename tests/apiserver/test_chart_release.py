"""The chart against a real kube-apiserver: install into a namespace enforcing the `restricted`
Pod Security level, the agent's RBAC as the API server decides it, upgrade, uninstall.

There is no kubelet: the StatefulSet controller creates the Pods (so the Pod spec goes
through admission), but nothing runs them. That is what these tests need.
"""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.rest import ApiException

from tests.chart.helm import CHART, EXAMPLES, MINIMAL_ZONES
from tests.harness.tools import tool

RELEASE = "dns"
FULLNAME = f"{RELEASE}-bind-ha"
SERVICE_ACCOUNT = FULLNAME
LEASE = f"{FULLNAME}-leader"


def run(*argv: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, input=stdin)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@dataclass
class Cluster:
    kubeconfig: str
    api: kubernetes.client.ApiClient

    def helm(self, namespace: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(
            tool("helm"), f"--kubeconfig={self.kubeconfig}", "--namespace", namespace, *args, check=check
        )

    def kubectl(
        self, namespace: str, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run(
            tool("kubectl"),
            f"--kubeconfig={self.kubeconfig}",
            "-n",
            namespace,
            *args,
            check=check,
            stdin=stdin,
        )

    def restricted_namespace(self, prefix: str) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        labels = {
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }
        kubernetes.client.CoreV1Api(self.api).create_namespace({"metadata": {"name": name, "labels": labels}})
        return name

    def get(self, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
        result = self.kubectl(namespace, "get", kind, name, "-o", "json", check=False)
        if result.returncode != 0:
            assert "NotFound" in result.stderr, result.stderr
            return None
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def secret_data(self, namespace: str) -> dict[str, str]:
        secret = self.get(namespace, "secret", f"{FULLNAME}-tsig")
        assert secret is not None
        data: dict[str, str] = secret["data"]
        return data

    def pods(self, namespace: str) -> list[str]:
        listed = kubernetes.client.CoreV1Api(self.api).list_namespaced_pod(namespace)
        return sorted(pod.metadata.name for pod in listed.items)

    def warning_events(self, namespace: str) -> list[str]:
        events = kubernetes.client.CoreV1Api(self.api).list_namespaced_event(namespace)
        return [
            f"{e.reason}: {e.message}"
            for e in events.items
            if e.type == "Warning" and e.reason == "FailedCreate"
        ]

    def can_i(self, namespace: str, verb: str, resource: str, *, in_namespace: str | None = None) -> bool:
        # "pods#status" is the status subresource of pods ("pods/status" would name a pod "status")
        resource, _, subresource = resource.partition("#")
        extra = [f"--subresource={subresource}"] if subresource else []
        result = self.kubectl(
            in_namespace or namespace, "auth", "can-i", verb, resource, *extra,
            f"--as=system:serviceaccount:{namespace}:{SERVICE_ACCOUNT}", check=False,
        )  # fmt: skip
        answer = result.stdout.strip()
        assert answer in ("yes", "no"), f"can-i {verb} {resource}: {result.stdout} {result.stderr}"
        return answer == "yes"


@pytest.fixture(scope="module")
def cluster(kube_config: str, api_client: kubernetes.client.ApiClient) -> Cluster:
    return Cluster(kube_config, api_client)


PRODUCTION_OVERRIDES = ["--set", "metrics.serviceMonitor.enabled=false"]  # no prometheus-operator CRDs here


@pytest.fixture(scope="module")
def production(cluster: Cluster) -> Iterator[str]:
    """values-examples/production.yaml installed into a restricted namespace; yields the namespace."""
    namespace = cluster.restricted_namespace("chart")
    cluster.helm(
        namespace,
        "install",
        RELEASE,
        str(CHART),
        "-f",
        str(EXAMPLES / "production.yaml"),
        *PRODUCTION_OVERRIDES,
    )
    yield namespace
    cluster.helm(namespace, "uninstall", RELEASE, check=False)


def test_every_object_of_the_release_is_accepted(cluster: Cluster, production: str) -> None:
    manifest = cluster.helm(production, "get", "manifest", RELEASE).stdout
    documents = [doc for doc in yaml.safe_load_all(manifest) if doc]
    assert len(documents) >= 12
    listed = cluster.kubectl(production, "get", "-f", "-", "-o", "name", stdin=manifest).stdout.split()
    assert len(listed) == len(documents), listed
    kinds = {doc["kind"] for doc in documents}
    assert {"StatefulSet", "Service", "ConfigMap", "Secret", "Role", "RoleBinding", "ServiceAccount"} <= kinds
    assert {"PodDisruptionBudget", "NetworkPolicy"} <= kinds


def test_pods_are_admitted_under_the_restricted_level(cluster: Cluster, production: str) -> None:
    expected = [f"{FULLNAME}-{ordinal}" for ordinal in range(3)]
    wait_for("the StatefulSet's pods", lambda: all(pod in cluster.pods(production) for pod in expected))
    assert cluster.warning_events(production) == []
    pod = cluster.get(production, "pod", f"{FULLNAME}-0")
    assert pod is not None
    spec = pod["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["init", "agent"]
    assert spec["initContainers"][1]["restartPolicy"] == "Always", "the API server kept the native sidecar"
    assert [c["name"] for c in spec["containers"]] == ["named", "exporter"]
    assert spec["volumes"][0]["name"], "volumes survived admission"
    assert any(
        v.get("persistentVolumeClaim", {}).get("claimName") == f"data-{FULLNAME}-0" for v in spec["volumes"]
    )


def test_the_namespace_really_enforces_restricted(cluster: Cluster, production: str) -> None:
    """Control: the same namespace rejects a pod that runs as root."""
    root = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root"},
        "spec": {
            "containers": [
                {"name": "c", "image": "localhost/bind-ha:0.1.0", "securityContext": {"runAsUser": 0}}
            ]
        },
    }
    result = cluster.kubectl(production, "create", "-f", "-", stdin=json.dumps(root), check=False)
    assert result.returncode != 0 and "violates PodSecurity" in result.stderr


def test_helm_test_pod_is_admitted_under_the_restricted_level(cluster: Cluster, production: str) -> None:
    rendered = run(
        tool("helm"), "template", RELEASE, str(CHART), "--namespace", production,
        "-f", str(EXAMPLES / "production.yaml"), *PRODUCTION_OVERRIDES,
        "--show-only", "templates/tests/selftest-pod.yaml",
    ).stdout  # fmt: skip
    created = cluster.kubectl(production, "create", "-f", "-", stdin=rendered, check=False)
    assert created.returncode == 0, created.stderr
    assert f"{FULLNAME}-selftest" in created.stdout
    cluster.kubectl(production, "delete", "pod", f"{FULLNAME}-selftest", "--wait=false")


def lease_manifest(name: str, holder: str) -> str:
    return json.dumps(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 10},
        }
    )


def test_notes_commands_work_against_the_api(cluster: Cluster, production: str) -> None:
    """The `kubectl get` lines NOTES.txt prints (roles, Lease, Events, the update key) run as shown."""
    if cluster.get(production, "lease", LEASE) is None:  # what a running agent would have made
        cluster.kubectl(production, "create", "-f", "-", stdin=lease_manifest(LEASE, "pod-0/uid"))
    notes = cluster.helm(production, "get", "notes", RELEASE).stdout
    commands = [line.strip() for line in notes.splitlines() if line.strip().startswith("kubectl get ")]
    secret_line = next(line for line in notes.splitlines() if '"$(kubectl get secret' in line)
    commands.append(secret_line.split('"$(', 1)[1].split(" | ", 1)[0])
    assert len(commands) >= 4, notes
    for command in commands:
        argv = shlex.split(command)
        result = run(tool("kubectl"), f"--kubeconfig={cluster.kubeconfig}", *argv[1:])
        assert "error" not in result.stderr.lower(), (command, result.stderr)
    roles = cluster.kubectl(production, *shlex.split(commands[0])[1:]).stdout
    assert "ROLE" in roles and f"{FULLNAME}-0" in roles


ALLOWED = [
    ("get", f"leases.coordination.k8s.io/{LEASE}"),
    ("update", f"leases.coordination.k8s.io/{LEASE}"),
    ("create", "leases.coordination.k8s.io"),
    ("list", "pods"),
    ("watch", "pods"),
    ("patch", f"pods/{FULLNAME}-0"),
    ("patch", f"pods/{FULLNAME}-2"),
    ("create", "events"),
]
DENIED = [
    ("update", "leases.coordination.k8s.io/another-lease"),
    ("get", "leases.coordination.k8s.io/another-lease"),
    ("delete", f"leases.coordination.k8s.io/{LEASE}"),
    ("patch", f"leases.coordination.k8s.io/{LEASE}"),  # renewals PUT the whole Lease
    ("list", "leases.coordination.k8s.io"),
    ("get", "secrets"),
    ("get", f"secrets/{FULLNAME}-tsig"),
    ("list", "secrets"),
    ("get", "configmaps"),
    ("create", "pods"),
    ("delete", "pods"),
    ("update", "pods"),
    ("create", "pods#exec"),
    ("get", "pods#log"),
    ("patch", "pods#status"),
    ("update", "pods#status"),
    ("get", "statefulsets.apps"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("delete", "events"),
    # issue 10: what the agent never used, and other pods than its own
    ("get", "pods"),
    ("patch", "pods"),
    ("patch", f"pods/{FULLNAME}-3"),
    ("patch", "pods/someone-else"),
    ("patch", "events"),
]


@pytest.mark.parametrize(("verb", "resource"), ALLOWED, ids=[f"{v} {r}" for v, r in ALLOWED])
def test_agent_may(cluster: Cluster, production: str, verb: str, resource: str) -> None:
    assert cluster.can_i(production, verb, resource)


@pytest.mark.parametrize(("verb", "resource"), DENIED, ids=[f"{v} {r}" for v, r in DENIED])
def test_agent_may_not(cluster: Cluster, production: str, verb: str, resource: str) -> None:
    assert not cluster.can_i(production, verb, resource)


def test_agent_has_no_rights_in_other_namespaces(cluster: Cluster, production: str) -> None:
    assert not cluster.can_i(production, "create", "leases.coordination.k8s.io", in_namespace="default")
    assert not cluster.can_i(production, "list", "pods", in_namespace="default")


def test_agent_creates_and_renews_its_lease_but_no_other(cluster: Cluster, production: str) -> None:
    """Real requests as the agent's ServiceAccount, as the election makes them."""
    as_agent = f"--as=system:serviceaccount:{production}:{SERVICE_ACCOUNT}"
    cluster.kubectl(production, "delete", "lease", LEASE, "--ignore-not-found")
    lease = lease_manifest
    cluster.kubectl(production, "create", "-f", "-", as_agent, stdin=lease(LEASE, "pod-0/uid"))
    cluster.kubectl(production, "replace", "-f", "-", as_agent, stdin=lease(LEASE, "pod-1/uid"))
    current = cluster.get(production, "lease", LEASE)
    assert current is not None and current["spec"]["holderIdentity"] == "pod-1/uid"
    other = cluster.kubectl(
        production, "replace", "-f", "-", as_agent, stdin=lease("another", "x"), check=False
    )
    assert other.returncode != 0 and "forbidden" in other.stderr.lower()
    denied = cluster.kubectl(production, "delete", "lease", LEASE, as_agent, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()


def test_install_upgrade_uninstall_keeps_the_tsig_keys(cluster: Cluster, tmp_path: Any) -> None:
    namespace = cluster.restricted_namespace("upgrade")
    first = tmp_path / "first.yaml"
    first.write_text(yaml.safe_dump({"replicaCount": 2, "zones": MINIMAL_ZONES}))
    cluster.helm(namespace, "install", RELEASE, str(CHART), "-f", str(first))
    keys = cluster.secret_data(namespace)
    assert set(keys) == {"transfer-secret", "update-secret"}
    wait_for("two pods", lambda: len(cluster.pods(namespace)) == 2)

    changed = {
        "replicaCount": 3,
        "zones": [
            *MINIMAL_ZONES,
            {"name": "dyn.example.com", "type": "dynamic", "nameservers": ["ns1.example.com."]},
        ],
        "election": {"leaseDurationSeconds": 4, "renewDeadlineSeconds": 2, "retryPeriodSeconds": 1},
        "metrics": {"enabled": True},
        "service": {"dns": {"type": "NodePort"}},
    }
    second = tmp_path / "second.yaml"
    second.write_text(yaml.safe_dump(changed))
    cluster.helm(namespace, "upgrade", RELEASE, str(CHART), "-f", str(second))
    assert cluster.secret_data(namespace) == keys, "an upgrade must keep the TSIG keys"
    statefulset = cluster.get(namespace, "statefulset", FULLNAME)
    assert statefulset is not None and statefulset["spec"]["replicas"] == 3
    env = {
        e["name"]: e.get("value") for e in statefulset["spec"]["template"]["spec"]["initContainers"][1]["env"]
    }
    assert env["BIND_HA_LEASE_DURATION"] == "4"
    zones = cluster.get(namespace, "configmap", f"{FULLNAME}-zones")
    assert zones is not None and len(yaml.safe_load(zones["data"]["zones.yaml"])) == 2
    assert cluster.get(namespace, "service", f"{FULLNAME}-metrics") is not None
    dns_service = cluster.get(namespace, "service", f"{FULLNAME}-dns")
    assert dns_service is not None and dns_service["spec"]["type"] == "NodePort"
    wait_for("the third pod", lambda: f"{FULLNAME}-2" in cluster.pods(namespace))

    # a second upgrade with the same values changes nothing, keys included
    cluster.helm(namespace, "upgrade", RELEASE, str(CHART), "-f", str(second))
    assert cluster.secret_data(namespace) == keys
    assert cluster.warning_events(namespace) == []

    python = next(
        line.split()[0].removeprefix("configmap/")
        for line in cluster.kubectl(namespace, "get", "configmaps", "-o", "name").stdout.splitlines()
        if line.startswith(f"configmap/{FULLNAME}-python-")
    )
    cluster.helm(namespace, "uninstall", RELEASE)
    gone: list[tuple[str, str]] = [
        ("statefulset", FULLNAME),
        ("service", f"{FULLNAME}-dns"),
        ("service", f"{FULLNAME}-primary"),
        ("service", f"{FULLNAME}-headless"),
        ("configmap", python),
        ("role", FULLNAME),
        ("rolebinding", FULLNAME),
        ("serviceaccount", FULLNAME),
        ("poddisruptionbudget", FULLNAME),
    ]
    for kind, name in gone:

        def absent(kind: str = kind, name: str = name) -> bool:
            return cluster.get(namespace, kind, name) is None

        wait_for(f"{kind} {name} to go", absent)
    assert cluster.helm(namespace, "status", RELEASE, check=False).returncode != 0
    # The keys outlive the release (helm.sh/resource-policy: keep): a reinstall finds the same ones.
    assert cluster.secret_data(namespace) == keys
    cluster.helm(namespace, "install", RELEASE, str(CHART), "-f", str(second))
    assert cluster.secret_data(namespace) == keys, "clients keep working across a reinstall"
    cluster.helm(namespace, "uninstall", RELEASE)
    kubernetes.client.CoreV1Api(cluster.api).delete_namespace(namespace)


def test_existing_tsig_secret_is_used(cluster: Cluster, tmp_path: Any) -> None:
    namespace = cluster.restricted_namespace("secret")
    core = kubernetes.client.CoreV1Api(cluster.api)
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "my-keys"},
            "stringData": {
                "transfer-secret": base64.b64encode(b"t" * 32).decode(),
                "update-secret": base64.b64encode(b"u" * 32).decode(),
            },
        },
    )
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"zones": MINIMAL_ZONES, "tsig": {"existingSecret": "my-keys"}, "replicaCount": 1})
    )
    cluster.helm(namespace, "install", RELEASE, str(CHART), "-f", str(values))
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_secret(f"{FULLNAME}-tsig", namespace)
    assert missing.value.status == 404
    wait_for("the pod", lambda: f"{FULLNAME}-0" in cluster.pods(namespace))
    pod = core.read_namespaced_pod(f"{FULLNAME}-0", namespace)
    tsig = next(volume for volume in pod.spec.volumes if volume.name == "tsig")
    assert tsig.secret.secret_name == "my-keys"
    cluster.helm(namespace, "uninstall", RELEASE)
    assert core.read_namespaced_secret("my-keys", namespace).metadata.name == "my-keys", (
        "not the chart's to delete"
    )
    core.delete_namespace(namespace)
