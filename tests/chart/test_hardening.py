"""Hostile or careless values are refused by the chart itself, naming the field (issue 10).

Every refusal is checked twice: by the schema, and by the template checks alone
(--skip-schema-validation), so neither can be turned off to let the values through.
"""

from __future__ import annotations

import base64
import json
import pathlib
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import CHART, FULLNAME, MINIMAL_ZONES, parse, render, render_error, render_text
from tests.chart.test_statefulset import fake_pod_env

ZONE = MINIMAL_ZONES[0]
SKIP_SCHEMA = ["--skip-schema-validation"]

# (case, values, text the error must contain without the schema, text with it)
REFUSED: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "name server carrying a directive",
        {"zones": [{**ZONE, "nameservers": ["ns1.example.com.\n$INCLUDE /etc/bind-ha/tsig/update-secret"]}]},
        "zones[0].nameservers[0]",
        "/zones/0/nameservers/0",
    ),
    (
        "SOA mname with a space",
        {"zones": [{**ZONE, "soa": {"mname": "ns1.example.com. evil.example.org."}}]},
        "zones[0].soa.mname",
        "/zones/0/soa/mname",
    ),
    (
        "SOA rname with a quote",
        {"zones": [{**ZONE, "soa": {"rname": 'host"master.example.com.'}}]},
        "zones[0].soa.rname",
        "/zones/0/soa/rname",
    ),
    (
        "$INCLUDE in records",
        {"zones": [{**ZONE, "records": "$include /var/run/secrets/kubernetes.io/serviceaccount/token\n"}]},
        "zones[0].records (example.com): $INCLUDE is not allowed",
        "$INCLUDE is not allowed",
    ),
    ("33 replicas", {"replicaCount": 33}, "replicaCount must be at least 1 and at most 32", "/replicaCount"),
    (
        "lease beyond int32",
        {"election": {"leaseDurationSeconds": 2**31, "renewDeadlineSeconds": 7}},
        "election.leaseDurationSeconds must be at most 2147483647",
        "/election/leaseDurationSeconds",
    ),
    (
        "retry period of an hour and more",
        {
            "election": {
                "leaseDurationSeconds": 100000,
                "renewDeadlineSeconds": 50000,
                "retryPeriodSeconds": 3601,
            }
        },
        "election.retryPeriodSeconds must be greater than 0 and at most 3600",
        "/election/retryPeriodSeconds",
    ),
    (
        "zonesConfigMap that is no object name",
        {"zonesConfigMap": "../etc"},
        'zonesConfigMap: "../etc" is not a Kubernetes object name',
        "/zonesConfigMap",
    ),
    (
        "existingSecret that is no object name",
        {"tsig": {"existingSecret": "Keys With Spaces"}},
        "tsig.existingSecret",
        "/tsig/existingSecret",
    ),
    (
        "role label in podLabels",
        {"podLabels": {"bind-ha.io/role": "primary"}},
        "podLabels.bind-ha.io/role",
        "podLabels.bind-ha.io/role",
    ),
    (
        "selector label in podLabels",
        {"podLabels": {"app.kubernetes.io/instance": "other"}},
        "podLabels.app.kubernetes.io/instance",
        "podLabels.app.kubernetes.io/instance",
    ),
    (
        "status annotation in podAnnotations",
        {"podAnnotations": {"bind-ha.io/status": '{"healthy": true, "serials": {"x": 4294967295}}'}},
        "podAnnotations.bind-ha.io/status",
        "podAnnotations.bind-ha.io/status",
    ),
    (
        "root pod",
        {"podSecurityContext": {"runAsUser": 0}},
        "podSecurityContext.runAsUser must not be 0",
        "/podSecurityContext",
    ),
    (
        "runAsNonRoot false",
        {"podSecurityContext": {"runAsNonRoot": False}},
        "podSecurityContext.runAsNonRoot must be true",
        "/podSecurityContext",
    ),
    (
        "privileged",
        {"securityContext": {"privileged": True}},
        "securityContext.privileged must be false",
        "/securityContext",
    ),
    (
        "privilege escalation",
        {"securityContext": {"allowPrivilegeEscalation": True}},
        "securityContext.allowPrivilegeEscalation must be false",
        "/securityContext",
    ),
    (
        "added capability",
        {"securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}}},
        "securityContext.capabilities.add must be empty",
        "/securityContext",
    ),
    (
        "root container",
        {"securityContext": {"runAsUser": 0}},
        "securityContext.runAsUser must not be 0",
        "/securityContext",
    ),
    (
        "hostPath zones volume",
        {"zonesVolume": {"hostPath": {"path": "/etc/kubernetes"}}},
        "zonesVolume: a hostPath volume is refused",
        "/zonesVolume",
    ),
    (
        "bad image digest",
        {"image": {"digest": "sha256:xyz"}},
        "image.digest must be sha256:",
        "/image/digest",
    ),
    (
        "client key named like the update key",
        {"tsig": {"clients": [{"name": "Bind-HA-Update.", "preset": "external-dns"}]}},
        'tsig.clients[0].name: key "bind-ha-update" is already tsig.updateKeyName',
        'tsig.clients[0].name: key "bind-ha-update" is already tsig.updateKeyName',
    ),
    (
        "client key given twice",
        {
            "tsig": {
                "clients": [{"name": "a", "preset": "external-dns"}, {"name": "A", "preset": "external-dns"}]
            }
        },
        'tsig.clients[1].name: key "a" is already tsig.clients[0].name',
        'tsig.clients[1].name: key "a" is already',
    ),
    (
        "acme client without names",
        {"tsig": {"clients": [{"name": "cm", "preset": "acme"}]}},
        "tsig.clients[0].names: the acme preset needs",
        "tsig.clients[0].names: the acme preset needs",
    ),
    (
        "client grant with a bad type",
        {
            "tsig": {
                "clients": [
                    {"name": "c", "grants": [{"match": "name", "name": "a.example.com", "types": ["A; };"]}]}
                ]
            }
        },
        "tsig.clients[0].grants[0].types[0]",
        "/tsig/clients/0/grants/0/types/0",
    ),
    (
        "client grant name with a quote",
        {
            "tsig": {
                "clients": [
                    {"name": "c", "grants": [{"match": "subdomain", "name": 'a"b.example', "types": ["A"]}]}
                ]
            }
        },
        "tsig.clients[0].grants[0].name",
        "/tsig/clients/0/grants/0/name",
    ),
    (
        "RRL exempt list with a brace",
        {"rrl": {"exemptClients": ["10.0.0.0/8; }; options {"]}},
        "rrl.exemptClients[0]",
        "/rrl/exemptClients/0",
    ),
]


@pytest.mark.parametrize(
    ("values", "by_template"), [(c[1], c[2]) for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_the_templates_refuse_it_without_the_schema(values: dict[str, Any], by_template: str) -> None:
    error = render_error(values, extra=SKIP_SCHEMA)
    assert by_template in error, error


@pytest.mark.parametrize(
    ("values", "by_schema"), [(c[1], c[3]) for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_the_schema_or_templates_refuse_it(values: dict[str, Any], by_schema: str) -> None:
    error = render_error(values)
    assert by_schema in error, error


@pytest.mark.parametrize(
    "values",
    [
        {
            "zones": [
                {
                    **ZONE,
                    "nameservers": ["ns1", "NS2.Example.NET."],
                    "soa": {"rname": "dns_admin.example.com."},
                }
            ]
        },
        {"podLabels": {"team": "dns"}, "podAnnotations": {"example.com/owner": "dns"}},
        {"securityContext": {"allowPrivilegeEscalation": False, "runAsNonRoot": True}},
        {"zonesVolume": {"persistentVolumeClaim": {"claimName": "zones"}}, "zonesConfigMap": ""},
        {"replicaCount": 32},
    ],
    ids=["header-names", "labels", "container-context", "pvc-volume", "32-replicas"],
)
def test_what_is_safe_still_renders(values: dict[str, Any]) -> None:
    assert render(values).statefulset


def test_the_generated_secret_is_kept_on_uninstall_and_as_long_as_the_hash() -> None:
    for algorithm, length in (
        ("hmac-sha224", 28),
        ("hmac-sha256", 32),
        ("hmac-sha384", 48),
        ("hmac-sha512", 64),
    ):
        secret = render({"tsig": {"algorithm": algorithm}}).get("Secret", f"{FULLNAME}-tsig")
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        for key, data in secret["data"].items():
            text = base64.b64decode(data).decode()
            assert len(base64.b64decode(text, validate=True)) == length, (algorithm, key)


def test_client_keys_get_secrets_files_and_environment(tmp_path: Path) -> None:
    from bind_ha import keys, settings

    clients = [
        {"name": "external-dns", "preset": "external-dns", "zones": ["example.com"]},
        {"name": "Cert-Manager.", "preset": "acme", "names": ["example.com"]},
    ]
    manifests = render({"zones": MINIMAL_ZONES, "tsig": {"clients": clients}})
    secret = manifests.get("Secret", f"{FULLNAME}-tsig")["data"]
    assert set(secret) == {"transfer-secret", "update-secret", "client-external-dns", "client-cert-manager"}
    tsig = next(v for v in manifests.pod_spec["volumes"] if v["name"] == "tsig")["secret"]
    assert [item["key"] for item in tsig["items"]] == list(secret)
    env = manifests.env("agent")
    assert json.loads(env["BIND_HA_TSIG_CLIENTS"]) == clients
    for name, data in secret.items():
        (tmp_path / name).write_text(base64.b64decode(data).decode())
    loaded = settings.load(
        {**fake_pod_env(env), "BIND_HA_TSIG_DIR": str(tmp_path), "BIND_HA_RUN_DIR": str(tmp_path)}
    )
    assert [client.name for client in loaded.tsig_clients] == ["external-dns", "cert-manager"]
    assert [key.name for key in keys.load_keys(loaded).clients] == ["external-dns", "cert-manager"]


@pytest.mark.parametrize(
    ("values", "on"),
    [
        ({}, False),
        ({"service": {"dns": {"type": "NodePort"}}}, True),
        ({"service": {"primary": {"type": "LoadBalancer"}}}, True),
        ({"rrl": {"mode": "always"}}, True),
        ({"service": {"dns": {"type": "LoadBalancer"}}, "rrl": {"mode": "never"}}, False),
    ],
    ids=["cluster-ip", "node-port", "load-balancer-primary", "always", "never"],
)
def test_rate_limiting_is_on_by_default_for_external_services(values: dict[str, Any], on: bool) -> None:
    from bind_ha import settings

    env = render(values).env("named")
    assert ("BIND_HA_RRL_RESPONSES_PER_SECOND" in env) is on
    loaded = settings.load(fake_pod_env(env))
    assert (loaded.rrl is not None) is on
    if on:
        assert loaded.rrl is not None and loaded.rrl.responses_per_second == 10
        assert loaded.rrl.exempt[:2] == ("127.0.0.0/8", "::1/128")


def test_forwarding_transfers_and_zone_limits_reach_the_agent() -> None:
    from bind_ha import settings

    values = {
        "updateForwarding": False,
        "tsig": {"updateKeyTransfers": "none"},
        "zoneLimits": {
            "maxBytes": 65536,
            "maxRecords": 1000,
            "compileTimeoutSeconds": 5,
            "compileMemoryMiB": 128,
        },
    }
    loaded = settings.load(fake_pod_env(render(values).env("agent")))
    assert loaded.update_forwarding is False and loaded.update_key_transfers == "none"
    limits = loaded.zone_limits
    assert (limits.max_bytes, limits.max_records, limits.compile_seconds) == (65536, 1000, 5)
    assert limits.compile_memory == 128 * 2**20
    defaults = settings.load(fake_pod_env(render().env("agent")))
    assert defaults.zone_limits == settings.DEFAULT_LIMITS


def test_images_can_be_pinned_by_digest() -> None:
    digest = "sha256:" + "a" * 64
    manifests = render(
        {"image": {"digest": digest}, "metrics": {"exporter": {"enabled": True, "image": {"digest": digest}}}}
    )
    for container in ("init", "agent", "named"):
        assert manifests.container(container)["image"] == f"localhost/bind-ha@{digest}"
    assert manifests.container("exporter")["image"] == f"prometheuscommunity/bind-exporter@{digest}"
    assert manifests.test_pod["spec"]["containers"][0]["image"] == f"localhost/bind-ha@{digest}"


def test_code_configmaps_are_immutable_and_named_after_their_content(tmp_path: pathlib.Path) -> None:
    """Finding 6: code cannot change in place under running pods; new code is a new ConfigMap."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    before = parse(render_text(chart=copy))
    (copy / "files" / "bind_ha" / "settings.py").write_text(
        (copy / "files" / "bind_ha" / "settings.py").read_text() + "# changed\n"
    )
    after = parse(render_text(chart=copy))
    for manifests in (before, after):
        for kind in ("python", "hooks"):
            assert manifests.scripts(kind)["immutable"] is True
    assert before.scripts("python")["metadata"]["name"] != after.scripts("python")["metadata"]["name"]
    assert before.scripts("hooks")["metadata"]["name"] == after.scripts("hooks")["metadata"]["name"]
    volumes = {v["name"]: v for v in after.pod_spec["volumes"]}
    assert volumes["python"]["configMap"]["name"] == after.scripts("python")["metadata"]["name"]
    test_volumes = {v["name"]: v for v in after.test_pod["spec"]["volumes"]}
    assert test_volumes["python"]["configMap"]["name"] == after.scripts("python")["metadata"]["name"]
    zones = after.get("ConfigMap", f"{FULLNAME}-zones")
    assert "immutable" not in zones, "zones are applied live: their ConfigMap stays editable"


def test_the_external_dns_example_narrows_its_keys() -> None:
    from bind_ha.clients import parse_clients

    example = yaml.safe_load((CHART.parent / "values-examples" / "external-dns.yaml").read_text())
    env = render(files=[CHART.parent / "values-examples" / "external-dns.yaml"]).env("agent")
    clients = parse_clients(env["BIND_HA_TSIG_CLIENTS"])
    assert [c.name for c in clients] == [c["name"] for c in example["tsig"]["clients"]]
    external_dns, cert_manager = clients
    assert all(
        "NS" not in g.types and "SOA" not in g.types and "ANY" not in g.types for g in external_dns.grants
    )
    assert cert_manager.grants[0].name == "_acme-challenge.k8s.example.com" and cert_manager.grants[
        0
    ].types == ("TXT",)
