"""NOTES.txt tells how to see roles, query and update."""

from __future__ import annotations

import pathlib
import tempfile
from typing import Any

from tests.chart.helm import CHART, FULLNAME, NAMESPACE, RELEASE, helm, values_file


def notes(values: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory() as directory:
        result = helm(
            "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client",
            "-f", str(values_file(values, pathlib.Path(directory))),
        )  # fmt: skip
    assert "NOTES:" in result.stdout
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_show_roles_query_and_update() -> None:
    text = notes({"zones": [{"name": "dyn.example", "type": "dynamic", "nameservers": ["ns1.example."]}]})
    # roles
    assert "-L bind-ha.io/role" in text
    assert f"kubectl get lease -n {NAMESPACE} {FULLNAME}-leader" in text
    # query through the DNS Service
    assert f"dig +norec @{FULLNAME}-dns.{NAMESPACE}.svc -p 53 dyn.example SOA" in text
    # signed update through the primary Service, with the update key from the Secret
    assert f"service/{FULLNAME}-primary" in text
    assert f"kubectl get secret -n {NAMESPACE} {FULLNAME}-tsig -o jsonpath='{{.data.update-secret}}'" in text
    assert "nsupdate -v -k update.key" in text
    assert " -y " not in text, "the secret never goes on a command line"
    assert "zone dyn.example" in text
    assert f"helm test -n {NAMESPACE} {RELEASE}" in text


def test_notes_warn_about_missing_zones_and_volatile_dynamic_zones() -> None:
    assert "no zones are configured" in notes({})
    volatile = notes({"zones": [{"name": "dyn.example", "type": "dynamic", "nameservers": ["ns1.example."]}]})
    assert "persistence.enabled" in volatile
    persistent = notes(
        {
            "zones": [{"name": "dyn.example", "type": "dynamic", "nameservers": ["ns1.example."]}],
            "persistence": {"enabled": True},
        }
    )
    assert "persistence.enabled" not in persistent


def test_notes_for_load_balancers_and_existing_secrets() -> None:
    text = notes({"service": {"dns": {"type": "LoadBalancer"}}, "tsig": {"existingSecret": "keys"}})
    assert "status.loadBalancer.ingress" in text
    assert "kubectl get secret -n dns keys" in text
    assert "rollout restart statefulset" in text


def test_notes_never_put_a_secret_on_a_command_line() -> None:
    """Finding 11 of issue 10: `nsupdate -y ALG:NAME:SECRET` shows the key to anyone running `ps`."""
    text = notes({"zones": [{"name": "dyn.example", "type": "dynamic", "nameservers": ["ns1.example."]}]})
    assert "-y " not in text and "$SECRET" not in text
    assert "umask 077" in text and "> update.key" in text


def test_notes_warn_when_the_write_path_is_external() -> None:
    text = notes({"service": {"primary": {"type": "LoadBalancer"}}})
    assert "WARNING: service.primary is a LoadBalancer" in text
    assert "WARNING: service.primary" not in notes({})
    reflect = notes({"service": {"dns": {"type": "NodePort"}}, "rrl": {"mode": "never"}})
    assert "reflect and amplify" in reflect
    assert "reflect and amplify" not in notes({"service": {"dns": {"type": "NodePort"}}})


def test_notes_list_client_keys_and_keep_the_secret() -> None:
    text = notes({"tsig": {"clients": [{"name": "external-dns", "preset": "external-dns"}]}})
    assert "external-dns: secret key client-external-dns (external-dns)" in text
    assert "kept on uninstall" in text and "tsig.existingSecret" in text


def test_notes_point_each_client_at_its_own_spelling() -> None:
    text = notes({})
    assert f"bind-ha client-config external-dns {RELEASE} -n {NAMESPACE}" in text
    assert "one --rfc2136-host (this primary Service) and --rfc2136-axfr" in text
    assert "cert-manager takes tsigAlgorithm HMACSHA256." in text
    assert '"Operating a release" in the project\'s README' in text
    assert "take the same" not in text and "--rfc2136-tsig-axfr" not in text
    assert "cert-manager takes tsigAlgorithm HMACSHA512." in notes({"tsig": {"algorithm": "hmac-sha512"}})
    for algorithm in ("hmac-sha384", "hmac-sha224"):
        refused = notes({"tsig": {"algorithm": algorithm}})
        assert f"cert-manager cannot use {algorithm} (only hmac-sha256 or hmac-sha512)." in refused
        assert "tsigAlgorithm" not in refused
