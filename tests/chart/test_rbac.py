"""RBAC: exactly what the agent does, nothing more; checked against what the agent's code calls."""

from __future__ import annotations

import re

import yaml

from tests.chart.helm import FULLNAME, NAMESPACE, Manifests, parse, render
from tests.harness.tools import REPO

EXPECTED_RULES = [
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [f"{FULLNAME}-leader"],
        "verbs": ["get", "update"],
    },
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "watch"]},
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "resourceNames": [f"{FULLNAME}-0", f"{FULLNAME}-1", f"{FULLNAME}-2"],
        "verbs": ["patch"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
]


def test_role_grants_exactly_the_agents_needs() -> None:
    role = render().get("Role")
    assert role["metadata"] == {**role["metadata"], "name": FULLNAME, "namespace": NAMESPACE}
    assert role["rules"] == EXPECTED_RULES


def test_role_names_the_lease_the_agent_uses() -> None:
    manifests = render()
    lease = manifests.env("agent")["BIND_HA_LEASE_NAME"]
    assert manifests.get("Role")["rules"][0]["resourceNames"] == [lease]


def test_nothing_beyond_the_role() -> None:
    manifests = render()
    for kind in ("ClusterRole", "ClusterRoleBinding", "Lease"):
        assert not manifests.has(kind), f"the chart must not create a {kind}"
    rules = manifests.get("Role")["rules"]
    resources = {resource for rule in rules for resource in rule["resources"]}
    verbs = {verb for rule in rules for verb in rule["verbs"]}
    assert resources == {"leases", "pods", "events"}
    assert "secrets" not in resources and "configmaps" not in resources
    assert "*" not in resources and "*" not in verbs
    assert not verbs & {"delete", "deletecollection", "escalate", "bind", "impersonate"}
    assert all("*" not in rule["apiGroups"] for rule in rules)


def test_binding_ties_the_role_to_the_service_account() -> None:
    manifests = render()
    binding = manifests.get("RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": FULLNAME}
    account = manifests.get("ServiceAccount")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}]
    assert account["metadata"]["name"] == FULLNAME
    assert account["automountServiceAccountToken"] is False
    assert manifests.pod_spec["serviceAccountName"] == FULLNAME


def test_rbac_files_render_alone_for_the_integration_tests() -> None:
    """tests/harness/pods.py applies the chart's own RBAC and admission policy to local agents."""
    from tests.harness.pods import MAX_PODS, rbac_manifest

    documents = parse(rbac_manifest(NAMESPACE))
    assert documents.kinds() == sorted(
        [
            "Role",
            "RoleBinding",
            "ServiceAccount",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ]
    )
    (patch,) = [
        rule
        for rule in documents.get("Role")["rules"]
        if rule["resources"] == ["pods"] and "patch" in rule["verbs"]
    ]
    assert len(patch["resourceNames"]) == MAX_PODS


def test_existing_service_account_and_no_rbac() -> None:
    manifests = render({"serviceAccount": {"create": False, "name": "dns-agent"}, "rbac": {"create": False}})
    assert (
        not manifests.has("ServiceAccount") and not manifests.has("Role") and not manifests.has("RoleBinding")
    )
    assert manifests.pod_spec["serviceAccountName"] == "dns-agent"
    bound = render({"serviceAccount": {"create": False, "name": "dns-agent"}})
    assert bound.get("RoleBinding")["subjects"][0]["name"] == "dns-agent"


def test_service_account_annotations() -> None:
    account = render({"serviceAccount": {"annotations": {"example.com/role": "dns"}}}).get("ServiceAccount")
    assert account["metadata"]["annotations"] == {"example.com/role": "dns"}


# The Python client's method prefixes, as RBAC verbs.
VERBS = {
    "read": "get",
    "list": "list",
    "create": "create",
    "replace": "update",
    "patch": "patch",
    "delete": "delete",
}


def api_calls() -> set[tuple[str, str]]:
    """(resource, verb) of every Kubernetes API call in the agent's package."""
    calls = set()
    for source in (REPO / "python" / "bind_ha").glob("*.py"):
        for verb, resource in re.findall(
            r"\.(read|list|create|replace|patch|delete)_namespaced_([a-z_]+)\b", source.read_text()
        ):
            calls.add((f"{resource}s", VERBS[verb]))
        if "watch.Watch()" in source.read_text() or ".stream(" in source.read_text():
            calls.add(("pods", "watch"))
    return calls


def allowed(manifests: Manifests) -> set[tuple[str, str]]:
    return {
        (resource, verb)
        for rule in manifests.get("Role")["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_every_api_call_of_the_agent_is_allowed() -> None:
    calls = api_calls()
    assert ("leases", "create") in calls and ("pods", "list") in calls, f"found no API calls: {calls}"
    missing = calls - allowed(render())
    assert not missing, f"the agent calls the API for {sorted(missing)} but the Role does not allow it"


def test_the_role_grants_no_verb_the_agent_never_uses() -> None:
    """Finding 2 of issue 10: patch of Leases, get of pods, patch of Events were granted unused."""
    unused = allowed(render()) - api_calls()
    assert not unused, f"the Role grants {sorted(unused)} but the agent never calls them"


def test_pods_may_be_patched_only_by_name_and_the_names_follow_replica_count() -> None:
    for replicas in (1, 5):
        rules = render({"replicaCount": replicas}).get("Role")["rules"]
        (patch,) = [rule for rule in rules if rule["resources"] == ["pods"] and "patch" in rule["verbs"]]
        assert patch["resources"] == ["pods"]
        assert patch["resourceNames"] == [f"{FULLNAME}-{ordinal}" for ordinal in range(replicas)]
    long = render({"nameOverride": "n" * 63})
    (patch,) = [
        rule
        for rule in long.get("Role")["rules"]
        if rule["resources"] == ["pods"] and "patch" in rule["verbs"]
    ]
    statefulset = long.statefulset["metadata"]["name"]
    assert patch["resourceNames"][0] == f"{statefulset}-0", "the StatefulSet's own pod names"


def test_the_admission_policy_is_bound_to_the_agent_in_this_namespace() -> None:
    manifests = render()
    policy = manifests.get("ValidatingAdmissionPolicy")
    binding = manifests.get("ValidatingAdmissionPolicyBinding")
    name = f"{NAMESPACE}.{FULLNAME}.bind-ha.io"
    assert policy["metadata"]["name"] == binding["metadata"]["name"] == name
    assert "namespace" not in policy["metadata"], "cluster-scoped"
    assert binding["spec"]["policyName"] == name and binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": NAMESPACE
    }
    assert policy["spec"]["failurePolicy"] == "Fail"
    (condition,) = policy["spec"]["matchConditions"]
    assert (
        condition["expression"]
        == f'request.userInfo.username == "system:serviceaccount:{NAMESPACE}:{FULLNAME}"'
    )
    assert not render({"rbac": {"admissionPolicy": False}}).has("ValidatingAdmissionPolicy")


def test_the_admission_policy_allows_exactly_the_labels_and_annotations_the_agent_writes() -> None:
    """A new annotation or label in the agent (settings.*_annotation, *_label) must be allowed
    by the policy too, or every agent's write of it is refused at admission."""
    from bind_ha import settings
    from tests.unit.test_settings import REQUIRED

    loaded = settings.load(REQUIRED)
    written = {
        kind: {getattr(loaded, name) for name in dir(type(loaded)) if name.endswith(f"_{kind}")}
        for kind in ("annotation", "label")
    }
    policy = yaml.safe_dump(render().get("ValidatingAdmissionPolicy")["spec"]["validations"])
    allowed_annotations = set(re.findall(r'"(bind-ha\.io/[a-z-]+)"', policy.replace("\\", ""))) - {
        "bind-ha.io/role"
    }
    assert written["annotation"] == allowed_annotations
    assert written["label"] == {"bind-ha.io/role"}
