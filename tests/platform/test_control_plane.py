"""Smoke tests proving the local control plane is a real Kubernetes API server."""

from __future__ import annotations

import datetime
import pathlib
import subprocess
import time
import uuid

import kubernetes
import pytest
from kubernetes.client.rest import ApiException
from pytest_helm_charts.clusters import Cluster

from tests.harness.tools import tool


def kubectl(kubeconfig: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("kubectl"), f"--kubeconfig={kubeconfig}", *args], capture_output=True, text=True, check=check
    )


@pytest.fixture
def namespace(api_client: kubernetes.client.ApiClient) -> str:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    core = kubernetes.client.CoreV1Api(api_client)
    core.create_namespace(
        {"metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    deadline = time.monotonic() + 30  # the controller-manager creates "default" asynchronously
    while not core.list_namespaced_service_account(name, field_selector="metadata.name=default").items:
        assert time.monotonic() < deadline, "service account controller never created 'default'"
        time.sleep(0.1)
    return name


def test_readyz_reports_ok(kube_config: str) -> None:
    assert kubectl(kube_config, "get", "--raw", "/readyz").stdout == "ok"
    assert "Server Version: v1.36" in kubectl(kube_config, "version").stdout


def test_stale_resource_version_gets_409(api_client: kubernetes.client.ApiClient, namespace: str) -> None:
    leases = kubernetes.client.CoordinationV1Api(api_client)
    now = datetime.datetime.now(datetime.UTC)
    created = leases.create_namespaced_lease(
        namespace,
        {
            "metadata": {"name": "smoke"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 10, "renewTime": now},
        },
    )
    stale = created.metadata.resource_version
    created.spec.holder_identity = "b"
    leases.replace_namespaced_lease("smoke", namespace, created)
    created.spec.holder_identity = "c"
    created.metadata.resource_version = stale
    with pytest.raises(ApiException) as conflict:
        leases.replace_namespaced_lease("smoke", namespace, created)
    assert conflict.value.status == 409
    assert leases.read_namespaced_lease("smoke", namespace).spec.holder_identity == "b"


def test_rbac_answers_can_i_for_a_service_account(kube_config: str, namespace: str) -> None:
    manifest = f"""
apiVersion: v1
kind: ServiceAccount
metadata: {{name: agent, namespace: {namespace}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: lease, namespace: {namespace}}}
rules:
- {{apiGroups: [coordination.k8s.io], resources: [leases], resourceNames: [leader], verbs: [get, update]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: lease, namespace: {namespace}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: lease}}
subjects: [{{kind: ServiceAccount, name: agent, namespace: {namespace}}}]
"""
    subprocess.run(
        [tool("kubectl"), f"--kubeconfig={kube_config}", "apply", "-f", "-"],
        input=manifest,
        text=True,
        check=True,
        capture_output=True,
    )
    who = f"--as=system:serviceaccount:{namespace}:agent"

    def can_i(*args: str) -> str:
        return kubectl(kube_config, "auth", "can-i", *args, "-n", namespace, who, check=False).stdout.strip()

    assert can_i("update", "leases.coordination.k8s.io/leader") == "yes"
    assert can_i("update", "leases.coordination.k8s.io/other") == "no"
    assert can_i("get", "secrets") == "no"


def test_token_request_issues_a_working_token(
    kube_config: str, namespace: str, api_client: kubernetes.client.ApiClient
) -> None:
    kubectl(kube_config, "create", "serviceaccount", "reader", "-n", namespace)
    token = kubectl(kube_config, "create", "token", "reader", "-n", namespace, "--duration=10m").stdout
    token = token.strip()
    assert token.count(".") == 2  # a signed JWT
    as_reader = kubernetes.client.Configuration()
    as_reader.host = api_client.configuration.host
    as_reader.ssl_ca_cert = api_client.configuration.ssl_ca_cert
    as_reader.api_key = {"authorization": token}
    as_reader.api_key_prefix = {"authorization": "Bearer"}
    core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(as_reader))
    with pytest.raises(ApiException) as denied:
        core.list_namespaced_pod(namespace)
    # Authenticated as the service account (not anonymous), then denied by RBAC.
    assert denied.value.status == 403
    assert f"system:serviceaccount:{namespace}:reader" in denied.value.body


def test_restricted_pod_security_rejects_a_root_pod(
    api_client: kubernetes.client.ApiClient, namespace: str
) -> None:
    core = kubernetes.client.CoreV1Api(api_client)
    privileged = {
        "metadata": {"name": "root"},
        "spec": {
            "containers": [
                {"name": "c", "image": "example.invalid/x:1", "securityContext": {"privileged": True}}
            ]
        },
    }
    with pytest.raises(ApiException) as rejected:
        core.create_namespaced_pod(namespace, privileged)
    assert rejected.value.status == 403
    assert "violates PodSecurity" in rejected.value.body
    compliant = {
        "metadata": {"name": "ok"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "c",
                    "image": "example.invalid/x:1",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "runAsUser": 1000,
                    },
                }
            ],
        },
    }
    assert core.create_namespaced_pod(namespace, compliant).metadata.name == "ok"


def test_helm_installs_and_uninstalls_a_tiny_chart(
    kube_cluster: Cluster, kube_config: str, namespace: str, tmp_path: pathlib.Path
) -> None:
    chart = tmp_path / "tiny"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (chart / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-cm\n"
        "data:\n  greeting: {{ .Values.greeting | quote }}\n"
    )
    (chart / "values.yaml").write_text("greeting: hello\n")
    helm = [tool("helm"), f"--kubeconfig={kube_config}", "-n", namespace]
    subprocess.run(
        [*helm, "install", "smoke", str(chart), "--wait", "--timeout=60s"], check=True, capture_output=True
    )
    configmap = kube_cluster.kubectl(f"get configmap smoke-cm -n {namespace}")
    assert configmap["data"]["greeting"] == "hello"
    subprocess.run([*helm, "uninstall", "smoke"], check=True, capture_output=True)
    gone = kubectl(kube_config, "get", "configmap", "smoke-cm", "-n", namespace, check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
