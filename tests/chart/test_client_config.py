"""`bind-ha client-config` reads what the chart renders, and the docs say what it prints."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import kubernetes
import pytest

from bind_ha.cli import clients, release
from bind_ha.cli.api import CommandError
from tests.chart.helm import EXAMPLES, Manifests, render

EXAMPLE = EXAMPLES / "external-dns.yaml"


@dataclass
class _Response:
    data: str


def model(document: dict[str, Any], kind: str) -> Any:
    """A rendered manifest as the Python client would return it from the API."""
    return kubernetes.client.ApiClient().deserialize(_Response(json.dumps(document)), kind)


@dataclass
class RenderedApi:
    """The two lists client-config makes, answered from helm template's output."""

    manifests: Manifests
    namespace: str = "dns"

    def list_statefulsets(self, selector: str) -> list[Any]:
        assert selector == "app.kubernetes.io/name=bind-ha,app.kubernetes.io/instance=test"
        return [model(doc, "V1StatefulSet") for doc in self.manifests.all("StatefulSet")]

    def list_services(self, selector: str) -> list[Any]:
        return [model(doc, "V1Service") for doc in self.manifests.all("Service")]


def settings(
    values: dict[str, Any] | None = None, files: tuple[Any, ...] = (), client: str | None = None
) -> clients.ClientSettings:
    api = RenderedApi(render(values, files=files))
    return release.client_settings(api, "test", zones=("k8s.example.com",), client=client)  # type: ignore[arg-type]


def test_client_settings_come_from_the_rendered_release() -> None:
    found = settings(
        {
            "tsig": {"algorithm": "hmac-sha512", "updateKeyName": "acme"},
            "service": {"primary": {"port": 5300}},
        }
    )
    assert found == clients.ClientSettings(
        release="test",
        namespace="dns",
        service="test-bind-ha-primary",
        port=5300,
        key_name="acme",
        algorithm="hmac-sha512",
        secret_name="test-bind-ha-tsig",
        zones=("k8s.example.com",),
        external=None,
    )
    assert settings({"tsig": {"existingSecret": "my-keys"}}).secret_name == "my-keys"
    node_port = settings({"service": {"primary": {"type": "NodePort", "nodePort": 30053}}})
    assert node_port.external == "any node's address, port 30053"


def test_the_external_dns_example_states_what_client_config_prints() -> None:
    found = settings(files=(EXAMPLE,), client="external-dns")
    assert (found.key_name, found.secret_key) == ("external-dns", "client-external-dns")
    printed = clients.recipe("external-dns", found, zone="k8s.example.com")
    header = [line for line in EXAMPLE.read_text().splitlines() if line.startswith("#")]
    flag_lines = [line for line in header if line.startswith("#   --")]
    # the example is written for release "dns"; helm.render installs "test" in namespace "dns"
    stated = [flag.replace("dns-bind-ha", "test-bind-ha") for line in flag_lines for flag in line[1:].split()]
    assert "--rfc2136-axfr" in stated and "--rfc2136-tsig-axfr" not in stated
    for flag in stated:
        assert f"  - {flag}\n" in printed, f"the example states {flag}, client-config does not print it"
    assert (
        "EXTERNAL_DNS_RFC2136_TSIG_SECRET" in "\n".join(header)
        and "EXTERNAL_DNS_RFC2136_TSIG_SECRET" in printed
    )
    cert_manager = clients.recipe("cert-manager", settings(files=(EXAMPLE,), client="cert-manager"))
    assert "tsigAlgorithm: HMACSHA256" in cert_manager and "tsigKeyName: cert-manager" in cert_manager
    assert "key: client-cert-manager" in cert_manager and "update-secret" not in cert_manager
    assert "tsigAlgorithm HMACSHA256" in "\n".join(header)


def test_a_client_uses_its_narrowed_key_only_when_exactly_one_fits() -> None:
    one = json.dumps(
        [{"name": "edns", "preset": "external-dns"}, {"name": "acme1", "preset": "acme", "names": ["a.test"]}]
    )
    assert release.choose_key(one, "bind-ha-update", "external-dns", None) == ("edns", "client-edns")
    assert release.choose_key(one, "bind-ha-update", "lego", None) == ("acme1", "client-acme1")
    assert release.choose_key(one, "bind-ha-update", "nsupdate", None) == ("bind-ha-update", "update-secret")
    two = json.dumps([{"name": f"a{i}", "preset": "acme", "names": [f"{i}.test"]} for i in (1, 2)])
    assert release.choose_key(two, "bind-ha-update", "cert-manager", None) == (
        "bind-ha-update",
        "update-secret",
    )
    assert release.choose_key(two, "bind-ha-update", "cert-manager", "a2") == ("a2", "client-a2")
    assert release.choose_key("", "bind-ha-update", "cert-manager", "bind-ha-update") == (
        "bind-ha-update",
        "update-secret",
    )
    with pytest.raises(CommandError, match="no such key"):
        release.choose_key(one, "bind-ha-update", "lego", "nobody")
    with pytest.raises(CommandError, match="BIND_HA_TSIG_CLIENTS"):
        release.choose_key('{"not": "a list"}', "bind-ha-update", "lego", None)


@pytest.mark.parametrize("client", clients.CLIENTS)
def test_every_client_recipe_renders_for_the_default_release(client: str) -> None:
    printed = clients.recipe(client, settings())
    assert "test-bind-ha-primary.dns.svc" in printed
    assert "bind-ha-update" in printed
