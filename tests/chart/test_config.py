"""ConfigMaps (scripts, zones) and the TSIG Secret."""

from __future__ import annotations

import base64
import pathlib

import pytest
import yaml

from tests.chart.helm import FULLNAME, MINIMAL_ZONES, example_files, render
from tests.harness.tools import REPO


def decoded(data: str) -> str:
    return base64.b64decode(data, validate=True).decode()


def test_tsig_secret_holds_two_generated_keys() -> None:
    secret = render().get("Secret", f"{FULLNAME}-tsig")
    assert secret["type"] == "Opaque"
    assert set(secret["data"]) == {"transfer-secret", "update-secret"}
    for key, value in secret["data"].items():
        text = decoded(value)  # the file BIND's key reads: base64 of 32 random bytes
        assert len(base64.b64decode(text, validate=True)) == 32, key
    assert secret["data"]["transfer-secret"] != secret["data"]["update-secret"]


def test_tsig_secret_format_is_what_the_agent_reads(tmp_path: pathlib.Path) -> None:
    from bind_ha import keys

    secret = render({"replicaCount": 2}).get("Secret", f"{FULLNAME}-tsig")
    for name in (keys.TRANSFER_SECRET_FILE, keys.UPDATE_SECRET_FILE):
        path = tmp_path / name
        path.write_text(decoded(secret["data"][name]))
        assert keys.read_secret(path) == decoded(secret["data"][name])


def test_tsig_secrets_differ_between_installs() -> None:
    """Generated per install (helm template has no cluster to look the old ones up in)."""
    first = render({"replicaCount": 2}).get("Secret")["data"]
    second = render({"replicaCount": 4}).get("Secret")["data"]
    assert first != second


def test_existing_tsig_secret_is_used_instead() -> None:
    manifests = render({"tsig": {"existingSecret": "my-keys"}})
    assert not manifests.has("Secret")
    volumes = {volume["name"]: volume for volume in manifests.pod_spec["volumes"]}
    assert volumes["tsig"]["secret"]["secretName"] == "my-keys"
    test_volumes = {volume["name"]: volume for volume in manifests.test_pod["spec"]["volumes"]}
    assert test_volumes["tsig"]["secret"]["secretName"] == "my-keys"


def test_tsig_secret_survives_upgrades_through_lookup() -> None:
    template = (REPO / "chart" / "templates" / "tsig-secret.yaml").read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace' in template


def test_rndc_key_is_not_in_the_release() -> None:
    """The rndc key is made inside each pod (init): no rendered object but the scripts mentions it."""
    manifests = render({"zones": MINIMAL_ZONES})
    scripts = {manifests.scripts(kind)["metadata"]["name"] for kind in ("python", "hooks")}
    for doc in manifests:
        if doc["metadata"]["name"] not in scripts:
            assert "rndc" not in yaml.safe_dump(doc), f"{doc['kind']} {doc['metadata']['name']}"


def test_zones_configmap_carries_the_values_zones() -> None:
    zones = [
        *MINIMAL_ZONES,
        {"name": "dyn.example.com", "type": "dynamic", "ttl": 60, "nameservers": ["ns1.example.com."]},
        {"name": "file.example.com", "file": "$TTL 60\n@ IN SOA ns1. h. 1 2 3 4 5\n@ IN NS ns1.\n"},
    ]
    configmap = render({"zones": zones}).get("ConfigMap", f"{FULLNAME}-zones")
    assert yaml.safe_load(configmap["data"]["zones.yaml"]) == zones


def test_zones_configmap_is_an_empty_list_without_zones() -> None:
    configmap = render().get("ConfigMap", f"{FULLNAME}-zones")
    assert yaml.safe_load(configmap["data"]["zones.yaml"]) == []


@pytest.mark.parametrize("values", example_files(), ids=lambda path: path.name)
def test_example_zones_parse_with_the_agents_zone_model(values: pathlib.Path) -> None:
    """zones.yaml as rendered is accepted by python/bind_ha/zonemodel.py (what the agent runs)."""
    from bind_ha import zonemodel

    configmap = render(files=[values]).get("ConfigMap", f"{FULLNAME}-zones")
    declared = yaml.safe_load(configmap["data"]["zones.yaml"])
    specs = zonemodel.merge([zonemodel.parse_zones(declared, "zones.yaml")])
    assert len(specs) == len(declared)


def test_scripts_configmaps_hold_the_package_and_the_hooks() -> None:
    manifests = render()
    package = manifests.scripts("python")["data"]
    hooks = manifests.scripts("hooks")["data"]
    assert {"__init__.py", "settings.py", "entrypoints.py", "selftest.py", "named.conf.j2"} <= set(package)
    assert {"init.py", "agent.py", "named.py", "helm_test.py"} <= set(hooks)
    assert all("/" not in key for key in [*package, *hooks]), "ConfigMap keys cannot hold '/'"
    assert not any(key.endswith(".pyc") or "__pycache__" in key for key in package)


def test_scripts_are_not_templated() -> None:
    """Shipped byte for byte: `{{` in a script would have been rendered, not shipped."""
    manifests = render()
    for name, text in manifests.scripts("hooks")["data"].items():
        assert text == (REPO / "hooks" / name).read_text()
    template = (REPO / "python" / "bind_ha" / "named.conf.j2").read_text()
    assert "{{" in template, "named.conf.j2 is a Jinja template for the agent"
    assert manifests.scripts("python")["data"]["named.conf.j2"] == template


def test_configmaps_stay_under_the_size_limit() -> None:
    for configmap in render().all("ConfigMap"):
        size = sum(len(value.encode()) for value in configmap["data"].values())
        assert size < 900 * 1024, f"{configmap['metadata']['name']} is {size} bytes (limit 1 MiB)"


def test_every_object_is_labelled_for_the_release() -> None:
    for doc in render():
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "test", doc["metadata"]["name"]
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "bind-ha-0.1.0"
