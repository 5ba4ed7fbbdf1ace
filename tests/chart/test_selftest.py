"""`helm test`: the test pod as rendered, and its checks (python/bind_ha/selftest.py) against real BIND."""

from __future__ import annotations

import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import dns.message
import dns.query
import dns.rdatatype
import pytest
import yaml

from bind_ha import health, probe
from bind_ha.runstate import AppliedZone, RunDir
from bind_ha.settings import ENVIRONMENT as AGENT_ENVIRONMENT
from tests.chart.helm import FULLNAME, NAMESPACE, render
from tests.harness.named import NamedInstance, NamedSet, TsigKey, new_secret

STATIC_ZONE = "static.test"
DYNAMIC_ZONE = "dyn.test"


def pod_env(values: dict[str, Any] | None = None) -> dict[str, str]:
    container = render(values).test_pod["spec"]["containers"][0]
    return {item["name"]: item["value"] for item in container["env"]}


def test_test_pod_is_a_helm_test_hook_running_helm_test_py() -> None:
    pod = render().test_pod
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    assert pod["spec"]["automountServiceAccountToken"] is False, "the test needs no API access"
    (container,) = pod["spec"]["containers"]
    assert container["command"] == ["python3", "/opt/bind-ha/hooks/helm_test.py"]
    assert container["image"] == render().container("named")["image"]


def test_test_pod_gets_only_the_update_key() -> None:
    volumes = {volume["name"]: volume for volume in render().test_pod["spec"]["volumes"]}
    assert volumes["tsig"]["secret"]["items"] == [{"key": "update-secret", "path": "update-secret"}]


def test_selftest_reads_the_test_pods_environment() -> None:
    from bind_ha import selftest

    config = selftest.load_config(
        pod_env({"service": {"primary": {"port": 5300}}, "zonesConfigMap": "my-zones"})
    )
    assert config.dns == selftest.Endpoint(f"{FULLNAME}-dns.{NAMESPACE}.svc", 53)
    assert config.primary == selftest.Endpoint(f"{FULLNAME}-primary.{NAMESPACE}.svc", 5300)
    # Every pod's /zones, on the port named's supervisor serves it on (settings' default).
    assert config.pods == selftest.Endpoint(f"{FULLNAME}-headless.{NAMESPACE}.svc", 8081)
    named_ports = {port["name"]: port["containerPort"] for port in render().container("named")["ports"]}
    assert named_ports["probes"] == int(AGENT_ENVIRONMENT["BIND_HA_PROBE_PORT"][1] or 0) == 8081
    assert config.zones_file == pathlib.Path("/etc/bind-ha/zones/zones.yaml")
    assert config.zones_dir == pathlib.Path("/etc/bind-ha/zones.d")
    assert config.tsig_dir == pathlib.Path("/etc/bind-ha/tsig")
    assert (config.tsig_algorithm, config.update_key_name) == ("hmac-sha256", "bind-ha-update")
    mounts = {
        m["mountPath"]
        for m in render({"zonesConfigMap": "my-zones"}).test_pod["spec"]["containers"][0]["volumeMounts"]
    }
    assert {
        "/etc/bind-ha/zones",
        "/etc/bind-ha/zones.d",
        "/etc/bind-ha/tsig",
        "/opt/bind-ha/python/bind_ha",
    } <= mounts


def test_selftest_follows_the_tsig_values() -> None:
    from bind_ha import selftest

    config = selftest.load_config(
        pod_env({"tsig": {"algorithm": "hmac-sha512", "updateKeyName": "externaldns"}})
    )
    assert (config.tsig_algorithm, config.update_key_name) == ("hmac-sha512", "externaldns")
    assert config.zones_dir is None


def test_selftest_rejects_a_bad_environment() -> None:
    from bind_ha import selftest

    assert selftest.main({"BIND_HA_TEST_DNS_SERVICE": "x"}) == 2  # no primary Service
    env = pod_env()
    assert selftest.main({**env, "BIND_HA_TEST_DNS_PORT": "eighty"}) == 2


# --- against a real named ---------------------------------------------------------


def start_named(named_set: NamedSet) -> NamedInstance:
    (instance,) = named_set.create(1)
    update = named_set.keys.update
    for zone in (STATIC_ZONE, DYNAMIC_ZONE):
        (instance.workdir / f"{zone}.db").write_text(
            f"$TTL 60\n@ IN SOA ns1.{zone}. hostmaster.{zone}. 1 3600 600 1209600 60\n"
            f"@ IN NS ns1.{zone}.\nns1 IN A 192.0.2.53\n"
        )
    conf = (
        f"options {{ {instance.base_options()} }};\n"
        + instance.controls()
        + update.clause()
        + f'zone "{STATIC_ZONE}" {{ type primary; file "{STATIC_ZONE}.db"; }};\n'
        + f'zone "{DYNAMIC_ZONE}" {{ type primary; file "{DYNAMIC_ZONE}.db";'
        + f' update-policy {{ grant "{update.name}" zonesub ANY; }}; }};\n'
    )
    instance.start(conf)
    return instance


Reporter = Callable[[list[tuple[str, bool]]], dict[str, str]]


@pytest.fixture
def pods_report(tmp_path: pathlib.Path) -> Iterator[Reporter]:
    """Serve /zones as named's supervisor does, for the zones given; returns the test pod's
    environment pointing at it (the headless Service's name resolves to this address)."""
    servers = []

    def serve(zones: list[tuple[str, bool]]) -> dict[str, str]:
        run = RunDir(tmp_path / f"run{len(servers)}")
        run.set_zones([AppliedZone(name, dynamic) for name, dynamic in zones])
        document = (lambda: probe.zones_document(run), "application/json")
        server = health.serve_routes("127.0.0.1", 0, probes={}, documents={"/zones": document})
        servers.append(server)
        return {"BIND_HA_TEST_PODS": "127.0.0.1", "BIND_HA_TEST_PROBE_PORT": str(server.server_address[1])}

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def write_sources(root: pathlib.Path, zones: list[dict[str, Any]], key: TsigKey) -> dict[str, str]:
    """zones.yaml and the tsig directory as the test pod mounts them; returns the pod's environment."""
    (root / "zones").mkdir(parents=True)
    (root / "zones" / "zones.yaml").write_text(yaml.safe_dump(zones))
    (root / "tsig").mkdir()
    (root / "tsig" / "update-secret").write_text(key.secret + "\n")
    return {
        "BIND_HA_ZONES_FILE": str(root / "zones" / "zones.yaml"),
        "BIND_HA_TSIG_DIR": str(root / "tsig"),
        "BIND_HA_UPDATE_KEY_NAME": key.name,
        "BIND_HA_TSIG_ALGORITHM": key.algorithm,
        "BIND_HA_TEST_TIMEOUT": "3",
    }


def zone(name: str, kind: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "nameservers": [f"ns1.{name}."]}


def run_selftest(instance: NamedInstance, env: dict[str, str]) -> list[Any]:
    from bind_ha import selftest

    config = selftest.load_config(
        {
            **env,
            "BIND_HA_TEST_DNS_SERVICE": instance.address,
            "BIND_HA_TEST_DNS_PORT": str(instance.port),
            "BIND_HA_TEST_PRIMARY_SERVICE": instance.address,
            "BIND_HA_TEST_PRIMARY_PORT": str(instance.port),
        }
    )
    return selftest.selftest(config)


def probe_records(instance: NamedInstance) -> list[Any]:
    query = dns.message.make_query(f"_bind-ha-selftest.{DYNAMIC_ZONE}.", dns.rdatatype.TXT)
    return list(dns.query.tcp(query, instance.address, port=instance.port, timeout=2).answer)


BOTH = [(STATIC_ZONE, False), (DYNAMIC_ZONE, True)]


def test_selftest_passes_against_a_healthy_primary(
    named_set: NamedSet, tmp_path: pathlib.Path, pods_report: Reporter
) -> None:
    instance = start_named(named_set)
    env = write_sources(
        tmp_path, [zone(STATIC_ZONE, "static"), zone(DYNAMIC_ZONE, "dynamic")], named_set.keys.update
    )
    checks = run_selftest(instance, {**env, **pods_report(BOTH)})
    assert [check.problem for check in checks] == [None] * len(checks), [check.line() for check in checks]
    lines = [check.line() for check in checks]
    assert sum("SOA" in line for line in lines) == 4, "two zones, UDP and TCP"
    assert any("unsigned update refused" in line for line in lines)
    assert any("signed update via" in line for line in lines)
    assert any("updated record served" in line for line in lines)
    assert probe_records(instance) == [], "the test cleans up its record"


def test_selftest_checks_zones_only_the_pods_report(
    named_set: NamedSet, tmp_path: pathlib.Path, pods_report: Reporter
) -> None:
    """A release whose zones come only from a zonesVolume (not mounted in the test pod)."""
    instance = start_named(named_set)
    env = write_sources(tmp_path, [], named_set.keys.update)
    checks = run_selftest(instance, {**env, **pods_report(BOTH)})
    assert all(check.problem is None for check in checks), [check.line() for check in checks]
    lines = [check.line() for check in checks]
    assert f"{DYNAMIC_ZONE}, {STATIC_ZONE}" in lines[0]
    assert sum("SOA" in line for line in lines) == 4
    assert any("signed update via" in line for line in lines)


def test_selftest_fails_for_a_declared_zone_no_pod_serves(
    named_set: NamedSet, tmp_path: pathlib.Path, pods_report: Reporter
) -> None:
    instance = start_named(named_set)
    env = write_sources(
        tmp_path, [zone(STATIC_ZONE, "static"), zone("rejected.test", "static")], named_set.keys.update
    )
    env["BIND_HA_TEST_TIMEOUT"] = "1"
    (check,) = run_selftest(instance, {**env, **pods_report([(STATIC_ZONE, False)])})
    assert check.problem == "declared but served by no pod: rejected.test"


def test_selftest_ignores_malformed_reports() -> None:
    from bind_ha.selftest import Zone, parse_zones_report

    assert parse_zones_report('{"applied": true, "zones": [{"name": "A.test.", "dynamic": true}]}') == [
        Zone("a.test", True)
    ]
    for text in (
        "not json",
        '{"applied": false, "zones": []}',
        '{"applied": true, "zones": [{"name": "a.test", "dynamic": "yes"}]}',
        '{"applied": true, "zones": [{"name": 7, "dynamic": true}]}',
        '{"applied": true, "zones": [{"name": "a..test", "dynamic": true}]}',
        '{"applied": true}',
        "[]",
    ):
        assert parse_zones_report(text) is None, text


def test_selftest_with_static_zones_only_checks_a_signed_refusal(
    named_set: NamedSet, tmp_path: pathlib.Path, pods_report: Reporter
) -> None:
    instance = start_named(named_set)
    env = write_sources(tmp_path, [zone(STATIC_ZONE, "static")], named_set.keys.update)
    checks = run_selftest(instance, {**env, **pods_report([(STATIC_ZONE, False)])})
    assert all(check.problem is None for check in checks), [check.line() for check in checks]
    assert "signed update refused with a verified signature" in checks[-1].line()


def test_selftest_fails_with_a_wrong_update_key(
    named_set: NamedSet, tmp_path: pathlib.Path, pods_report: Reporter
) -> None:
    instance = start_named(named_set)
    wrong = TsigKey(named_set.keys.update.name, new_secret())
    env = write_sources(tmp_path, [zone(DYNAMIC_ZONE, "dynamic")], wrong)
    env["BIND_HA_TEST_TIMEOUT"] = "1"
    env.update(pods_report([(DYNAMIC_ZONE, True)]))
    failed = [check for check in run_selftest(instance, env) if check.problem is not None]
    assert failed, "a wrong key must fail the test"
    assert "signed update" in failed[0].what
    assert probe_records(instance) == []


def test_selftest_fails_for_a_zone_that_is_not_served(
    named_set: NamedSet, tmp_path: pathlib.Path, pods_report: Reporter
) -> None:
    """A zone the pods applied that named does not serve (e.g. it failed to load)."""
    instance = start_named(named_set)
    env = write_sources(
        tmp_path, [zone(STATIC_ZONE, "static"), zone("missing.test", "static")], named_set.keys.update
    )
    env["BIND_HA_TEST_TIMEOUT"] = "1"
    env.update(pods_report([(STATIC_ZONE, False), ("missing.test", False)]))
    failed = [check.line() for check in run_selftest(instance, env) if check.problem is not None]
    assert len(failed) == 2 and all("missing.test SOA" in line and "REFUSED" in line for line in failed), (
        failed
    )


def test_selftest_fails_without_zones(tmp_path: pathlib.Path, pods_report: Reporter) -> None:
    from bind_ha import selftest

    env = write_sources(tmp_path, [], TsigKey("k", new_secret()))
    config = selftest.load_config(
        {
            **env,
            **pods_report([]),
            "BIND_HA_TEST_DNS_SERVICE": "127.0.0.1",
            "BIND_HA_TEST_PRIMARY_SERVICE": "127.0.0.1",
        }
    )
    (check,) = selftest.selftest(config)
    assert check.problem is not None and "no zones" in check.problem


def test_selftest_fails_when_no_pod_reports(tmp_path: pathlib.Path) -> None:
    from bind_ha import selftest

    env = write_sources(tmp_path, [zone(STATIC_ZONE, "static")], TsigKey("k", new_secret()))
    config = selftest.load_config(
        {
            **env,
            "BIND_HA_TEST_PODS": "127.0.0.1",
            "BIND_HA_TEST_PROBE_PORT": "9",  # nothing listens there
            "BIND_HA_TEST_TIMEOUT": "1",
            "BIND_HA_TEST_DNS_SERVICE": "127.0.0.1",
            "BIND_HA_TEST_PRIMARY_SERVICE": "127.0.0.1",
        }
    )
    (check,) = selftest.selftest(config)
    assert check.problem == "no pod behind 127.0.0.1:9 reported applied zones"
