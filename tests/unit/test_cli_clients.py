"""`bind-ha client-config`: each client's own spelling, and never the secret (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from bind_ha.cli import clients
from bind_ha.cli.clients import ClientConfigError, ClientSettings
from bind_ha.settings import TSIG_ALGORITHMS

SETTINGS = ClientSettings(
    release="dns",
    namespace="dns",
    service="dns-bind-ha-primary",
    port=53,
    key_name="externaldns",
    algorithm="hmac-sha256",
    secret_name="dns-bind-ha-tsig",
    zones=("k8s.example.com",),
)


def yaml_part(text: str, start: str) -> object:
    """The YAML block of a recipe that begins with the line `start`."""
    lines = text.splitlines()
    begin = lines.index(start)
    end = next((i for i in range(begin + 1, len(lines)) if not lines[i].strip()), len(lines))
    return yaml.safe_load("\n".join(lines[begin:end]))


@pytest.mark.parametrize(
    ("algorithm", "external_dns", "cert_manager", "lego", "nsupdate"),
    [
        ("hmac-sha256", "hmac-sha256", "HMACSHA256", "hmac-sha256.", "hmac-sha256"),
        ("hmac-sha512", "hmac-sha512", "HMACSHA512", "hmac-sha512.", "hmac-sha512"),
        ("hmac-sha384", "hmac-sha384", None, "hmac-sha384.", "hmac-sha384"),
        ("hmac-sha224", "hmac-sha224", None, "hmac-sha224.", "hmac-sha224"),
    ],
)
def test_each_client_spells_the_algorithm_its_own_way(
    algorithm: str, external_dns: str, cert_manager: str | None, lego: str, nsupdate: str
) -> None:
    assert algorithm in TSIG_ALGORITHMS
    assert clients.external_dns_algorithm(algorithm) == external_dns
    assert clients.lego_algorithm(algorithm) == lego
    assert clients.nsupdate_algorithm(algorithm) == nsupdate
    if cert_manager is None:
        with pytest.raises(ClientConfigError, match=f"cert-manager cannot use {algorithm}"):
            clients.cert_manager_algorithm(algorithm)
    else:
        assert clients.cert_manager_algorithm(algorithm) == cert_manager


def test_cert_manager_refuses_what_it_cannot_do_with_the_list_of_what_it_can() -> None:
    with pytest.raises(ClientConfigError) as refused:
        clients.recipe("cert-manager", replace(SETTINGS, algorithm="hmac-sha384"))
    assert "HMACMD5, HMACSHA1, HMACSHA256, HMACSHA512" in str(refused.value)
    assert "hmac-sha256 or hmac-sha512" in str(refused.value)


def test_external_dns_uses_one_host_the_current_flags_and_a_secret_reference() -> None:
    text = clients.recipe("external-dns", SETTINGS, zone="k8s.example.com.")
    container = yaml_part(text, "args:")
    assert container == {
        "args": [
            "--provider=rfc2136",
            "--rfc2136-host=dns-bind-ha-primary.dns.svc",
            "--rfc2136-port=53",
            "--rfc2136-zone=k8s.example.com",
            "--rfc2136-tsig-keyname=externaldns",
            "--rfc2136-tsig-secret-alg=hmac-sha256",
            "--rfc2136-axfr",
        ],
        "env": [
            {
                "name": "EXTERNAL_DNS_RFC2136_TSIG_SECRET",
                "valueFrom": {"secretKeyRef": {"name": "dns-bind-ha-update", "key": "update-secret"}},
            }
        ],
    }
    assert text.count("--rfc2136-host=") == 1
    assert "- --rfc2136-tsig-axfr" not in text, "the deprecated flag is only mentioned, never set"
    assert "FORMERR" in text, "the recipe says why there is one host"
    assert "external-dns.kubernetes.io/hostname: www.k8s.example.com" in text
    assert "kubectl create secret generic dns-bind-ha-update -n external-dns" in text


def test_cert_manager_solver() -> None:
    text = clients.recipe("cert-manager", SETTINGS, zone="k8s.example.com")
    solver = yaml_part(text, "- selector:")
    assert solver == [
        {
            "selector": {"dnsZones": ["k8s.example.com"]},
            "dns01": {
                "rfc2136": {
                    "nameserver": "dns-bind-ha-primary.dns.svc:53",
                    "tsigKeyName": "externaldns",
                    "tsigAlgorithm": "HMACSHA256",
                    "tsigSecretSecretRef": {"name": "dns-bind-ha-update", "key": "update-secret"},
                }
            },
        }
    ]
    assert "-n cert-manager" in text


def test_lego_reads_rfc2136_variables_and_the_secret_from_a_file() -> None:
    text = clients.recipe("lego", replace(SETTINGS, algorithm="hmac-sha512"), namespace="dns")
    env = {item["name"]: item["value"] for item in yaml_part(text, "env:")["env"]}  # type: ignore[index]
    assert env == {
        "RFC2136_NAMESERVER": "dns-bind-ha-primary.dns.svc:53",
        "RFC2136_TSIG_KEY": "externaldns",
        "RFC2136_TSIG_ALGORITHM": "hmac-sha512.",
        "RFC2136_TSIG_SECRET_FILE": "/etc/bind-ha-update/update-secret",
    }
    pod = yaml_part(text, "volumes:")
    assert isinstance(pod, dict) and set(pod) == {"volumes", "volumeMounts", "env"}
    assert pod["volumeMounts"] == [
        {"name": "bind-ha-update", "mountPath": "/etc/bind-ha-update", "readOnly": True}
    ]
    assert {"volumes": pod["volumes"]} == {
        "volumes": [
            {
                "name": "bind-ha-update",
                "secret": {
                    "secretName": "dns-bind-ha-tsig",
                    "items": [{"key": "update-secret", "path": "update-secret"}],
                },
            }
        ]
    }
    assert "kubectl create secret" not in text, "same namespace: the release's Secret is mounted as it is"


def test_nsupdate_writes_a_key_file_and_uses_k() -> None:
    text = clients.recipe("nsupdate", SETTINGS, zone="k8s.example.com")
    assert "nsupdate -k externaldns.key <<'EOF'" in text
    assert "server dns-bind-ha-primary.dns.svc 53" in text
    assert "zone k8s.example.com" in text
    assert """printf 'key "externaldns" {\\n\\talgorithm hmac-sha256;\\n\\tsecret "'""" in text
    assert (
        "kubectl get secret -n dns dns-bind-ha-tsig -o jsonpath='{.data.update-secret}' | base64 -d" in text
    )
    assert " -y " not in text, "a secret never goes on a command line"


@pytest.mark.parametrize("client", clients.CLIENTS)
def test_no_recipe_puts_a_secret_on_a_command_line(client: str) -> None:
    text = clients.recipe(client, SETTINGS)
    for line in text.splitlines():
        assert "--rfc2136-tsig-secret=" not in line
        assert "RFC2136_TSIG_SECRET=" not in line
        assert not line.startswith("nsupdate -y")
    assert "ZONE: one of this release's dynamic zones (it serves: k8s.example.com)" in text


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"key_name": 'k"; rm -rf /'}, "BIND_HA_UPDATE_KEY_NAME"),
        ({"key_name": ""}, "BIND_HA_UPDATE_KEY_NAME"),
        ({"algorithm": "hmac-md5"}, "BIND_HA_TSIG_ALGORITHM"),
        ({"secret_name": "a b"}, "TSIG Secret name"),
        ({"service": "$(id)"}, "service"),
        ({"port": 0}, "port"),
    ],
)
def test_values_from_the_cluster_are_checked(change: dict[str, object], complaint: str) -> None:
    with pytest.raises(ClientConfigError, match=complaint):
        clients.recipe("nsupdate", replace(SETTINGS, **change))  # type: ignore[arg-type]


def test_zone_and_client_namespace_are_checked() -> None:
    with pytest.raises(ClientConfigError, match="--zone"):
        clients.recipe("lego", SETTINGS, zone="bad zone")
    with pytest.raises(ClientConfigError, match="--client-namespace"):
        clients.recipe("lego", SETTINGS, namespace="Bad_NS")


def test_the_external_address_is_offered_when_there_is_one() -> None:
    text = clients.recipe("nsupdate", replace(SETTINGS, external="192.0.2.10 port 53"))
    assert "external address 192.0.2.10 port 53" in text


def test_zone_names_published_by_pods_are_shown_only_when_they_are_names() -> None:
    text = clients.recipe("lego", replace(SETTINGS, zones=("k8s.example.com", "\x1b[2Jevil", "a b")))
    assert "(it serves: k8s.example.com)" in text
    assert "\x1b" not in text
