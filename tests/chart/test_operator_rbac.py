"""The operator's Role (rbac.operator): off by default, exactly what `bind-ha` needs when on."""

from __future__ import annotations

import pytest

from tests.chart.helm import FULLNAME, NAMESPACE, helm, parse, render, render_error
from tests.harness.tools import REPO

OPERATOR = f"{FULLNAME}-operator"
EXPECTED_RULES = [
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": [f"{FULLNAME}-leader"],
        "verbs": ["get", "patch"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": ["apps"], "resources": ["statefulsets"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["services"], "verbs": ["list"]},
]
GROUP = {"kind": "Group", "name": "dns-operators", "apiGroup": "rbac.authorization.k8s.io"}


def test_off_by_default() -> None:
    manifests = render()
    assert not manifests.has("Role", OPERATOR) and not manifests.has("RoleBinding", OPERATOR)


def test_role_grants_exactly_what_the_command_needs() -> None:
    manifests = render({"rbac": {"operator": {"create": True}}})
    role = manifests.get("Role", OPERATOR)
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    assert role["rules"] == EXPECTED_RULES
    assert role["rules"][1]["resourceNames"] == [manifests.env("agent")["BIND_HA_LEASE_NAME"]]
    verbs = {verb for rule in role["rules"] for verb in rule["verbs"]}
    resources = {resource for rule in role["rules"] for resource in rule["resources"]}
    assert "secrets" not in resources and "*" not in resources and "*" not in verbs
    assert not verbs & {"delete", "deletecollection", "update", "watch", "escalate", "bind", "impersonate"}
    assert not manifests.has("RoleBinding", OPERATOR), "no subjects, no binding"


def test_subjects_get_a_binding() -> None:
    manifests = render({"rbac": {"operator": {"create": True, "subjects": [GROUP]}}})
    binding = manifests.get("RoleBinding", OPERATOR)
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": OPERATOR}
    assert binding["subjects"] == [GROUP]


def test_independent_of_the_agents_rbac() -> None:
    manifests = render({"rbac": {"create": False, "operator": {"create": True}}})
    assert manifests.has("Role", OPERATOR) and not manifests.has("Role", FULLNAME)


@pytest.mark.parametrize(
    ("operator", "complaint"),
    [
        ({"create": True, "verbs": ["*"]}, "verbs"),
        ({"create": "yes"}, "create"),
        ({"create": True, "subjects": [{"kind": "Robot", "name": "x"}]}, "kind"),
        ({"create": True, "subjects": [{"kind": "Group"}]}, "name"),
        ({"create": True, "subjects": [{"kind": "ServiceAccount", "name": "ops"}]}, "namespace"),
    ],
)
def test_schema_refuses_bad_operator_values(operator: dict[str, object], complaint: str) -> None:
    error = render_error({"rbac": {"operator": operator}})
    assert "rbac" in error and complaint in error, error


@pytest.mark.parametrize("release", ["test", "dns", "my-bind-ha", "bind-ha", "r" * 53, "r" * 40])
def test_the_commands_naming_rules_match_the_chart(release: str) -> None:
    """bind_ha.cli.names (the fallback when no pod states its Lease) names what helm names."""
    from bind_ha.cli import names

    rendered = helm("template", release, str(REPO / "chart"), "--namespace", NAMESPACE).stdout
    manifests = parse(rendered)
    assert manifests.env("agent")["BIND_HA_LEASE_NAME"] == names.lease_name(release)
    assert manifests.has("Service", names.primary_service_name(release))
    assert manifests.has("Secret", names.tsig_secret_name(release))
