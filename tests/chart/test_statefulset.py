"""The StatefulSet: containers, their order, environment, probes, volumes, scheduling, rollouts."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.chart.helm import (
    CHART,
    FULLNAME,
    MINIMAL_ZONES,
    NAMESPACE,
    SELECTOR_LABELS,
    Manifests,
    helm,
    parse,
    render,
    render_text,
)

AGENT_CONTAINERS = ("init", "agent", "named")
DOWNWARD = {
    "POD_NAME": "metadata.name",
    "POD_UID": "metadata.uid",
    "POD_NAMESPACE": "metadata.namespace",
    "POD_IP": "status.podIP",
}


def fake_pod_env(env: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would give it (downward API filled in)."""
    filled = {"metadata.name": f"{FULLNAME}-0", "metadata.uid": "uid-0", "metadata.namespace": NAMESPACE}
    filled["status.podIP"] = "10.0.0.7"
    return {
        name: filled[value["fieldPath"]] if isinstance(value, dict) else value for name, value in env.items()
    }


def test_names_and_replicas() -> None:
    sts = render().statefulset
    assert sts["metadata"]["name"] == FULLNAME
    assert sts["metadata"]["namespace"] == NAMESPACE
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == f"{FULLNAME}-headless"
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    assert sts["spec"]["updateStrategy"] == {"type": "RollingUpdate"}
    assert render({"replicaCount": 5}).statefulset["spec"]["replicas"] == 5


def test_selector_labels_are_name_instance_component_only() -> None:
    sts = render().statefulset
    assert sts["spec"]["selector"] == {"matchLabels": SELECTOR_LABELS}
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert SELECTOR_LABELS.items() <= labels.items()
    assert "bind-ha.io/role" not in labels, "the role label is the agent's to set"


def test_long_release_names_are_cut_to_valid_lengths() -> None:
    manifests = render({"nameOverride": "n" * 63})
    for doc in manifests:
        # cluster-scoped admission objects are DNS subdomains (253), named NAMESPACE.FULLNAME.bind-ha.io
        limit = 253 if doc["kind"].startswith("ValidatingAdmissionPolicy") else 63
        assert len(doc["metadata"]["name"]) <= limit, doc["metadata"]["name"]
    # controller-revision-hash=<statefulset>-<10 characters> must fit in a label value
    assert len(manifests.statefulset["metadata"]["name"]) <= 52
    services = {svc["metadata"]["name"] for svc in manifests.all("Service")}
    assert len(services) == 3, "suffixes must survive the cut: names stay distinct"
    assert all(name.endswith(("-dns", "-primary", "-headless")) for name in services)


def test_container_layout_init_then_native_sidecar_agent_then_named() -> None:
    spec = render().pod_spec
    assert [c["name"] for c in spec["initContainers"]] == ["init", "agent"]
    assert [c["name"] for c in spec["containers"]] == ["named"]
    init, agent = spec["initContainers"]
    assert "restartPolicy" not in init
    assert agent["restartPolicy"] == "Always", "the agent must be a native sidecar (stops after named)"
    assert init["command"] == ["python3", "/opt/bind-ha/hooks/init.py"]
    assert agent["command"] == ["python3", "/opt/bind-ha/hooks/agent.py"]
    assert spec["containers"][0]["command"] == ["python3", "/opt/bind-ha/hooks/named.py"]


def test_every_container_runs_the_chart_image() -> None:
    manifests = render()
    for name in AGENT_CONTAINERS:
        assert manifests.container(name)["image"] == "localhost/bind-ha:0.1.0"
        assert manifests.container(name)["imagePullPolicy"] == "IfNotPresent"
    custom = render(
        {"image": {"repository": "registry.example/bind-ha", "tag": "9.9", "pullPolicy": "Always"}}
    )
    assert custom.container("named")["image"] == "registry.example/bind-ha:9.9"
    assert custom.container("agent")["imagePullPolicy"] == "Always"


def test_probes() -> None:
    manifests = render()
    agent = manifests.container("agent")
    assert agent["ports"] == [{"name": "health", "containerPort": 8080, "protocol": "TCP"}]
    assert agent["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    # Waits (up to its timeout less a second) for the first round instead of failing at once.
    assert agent["readinessProbe"]["httpGet"] == {"path": "/readyz?wait=9", "port": "health"}
    assert agent["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    # /healthz is served before the agent's imports; the delay lets the interpreter start.
    assert agent["startupProbe"]["initialDelaySeconds"] == 2
    named = manifests.container("named")
    # Answered by the supervisor beside named over HTTP: no Python started per probe.
    # readiness is "every zone answers SOA with AA", not a TCP check; liveness "named answers".
    assert named["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "probes"}
    assert named["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "probes"}
    # Waits for readiness, then settles for liveness: a normal start logs no failed probe.
    assert named["startupProbe"]["httpGet"] == {"path": "/started?wait=19", "port": "probes"}
    assert named["startupProbe"]["initialDelaySeconds"] == 2  # served before the imports too
    assert all("exec" not in named[probe] for probe in ("readinessProbe", "livenessProbe", "startupProbe"))
    assert named["ports"] == [
        {"name": "dns", "containerPort": 5353, "protocol": "UDP"},
        {"name": "dns-tcp", "containerPort": 5353, "protocol": "TCP"},
        {"name": "probes", "containerPort": 8081, "protocol": "TCP"},
    ]


def test_probe_timings_are_values() -> None:
    defaults = render()
    assert {
        key: defaults.container("named")["readinessProbe"][key]
        for key in ("periodSeconds", "timeoutSeconds", "failureThreshold")
    } == {"periodSeconds": 5, "timeoutSeconds": 3, "failureThreshold": 2}
    timing = {"periodSeconds": 7, "timeoutSeconds": 4, "failureThreshold": 9}
    custom = render(
        {
            "probes": {
                "named": {"startup": timing, "readiness": timing, "liveness": timing},
                "agent": {"startup": timing, "readiness": timing, "liveness": timing},
            }
        }
    )
    for container in ("named", "agent"):
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert {key: custom.container(container)[probe][key] for key in timing} == timing


def test_a_probe_waits_its_timeout_less_a_second() -> None:
    custom = render(
        {
            "probes": {
                "named": {"startup": {"periodSeconds": 1, "timeoutSeconds": 1, "failureThreshold": 1}},
                "agent": {"readiness": {"periodSeconds": 1, "timeoutSeconds": 4, "failureThreshold": 1}},
            }
        }
    )
    assert custom.container("named")["startupProbe"]["httpGet"]["path"] == "/started?wait=0"
    assert custom.container("agent")["readinessProbe"]["httpGet"]["path"] == "/readyz?wait=3"


def test_a_deleted_pod_keeps_answering_before_it_stops() -> None:
    """A preStop sleep on named: kube-proxy takes the pod out of the Services before named
    gets SIGTERM (tests/e2e/test_failover.py sees no lookup fail while a pod is deleted)."""
    named = render().container("named")
    assert named["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert "lifecycle" not in render({"shutdownDelaySeconds": 0}).container("named")
    assert "lifecycle" not in render().container("agent")
    longer = render({"shutdownDelaySeconds": 20, "terminationGracePeriodSeconds": 30})
    assert longer.container("named")["lifecycle"]["preStop"]["sleep"]["seconds"] == 20
    bad = helm("template", "test", str(CHART), "--set", "shutdownDelaySeconds=25", check=False)
    assert bad.returncode != 0
    assert (
        "shutdownDelaySeconds (25) must leave at least 10 s of terminationGracePeriodSeconds (30)"
        in bad.stderr
    )


def test_probe_timings_are_checked_by_the_schema() -> None:
    bad = helm("template", "test", str(CHART), "--set", "probes.named.liveness.timeoutSeconds=0", check=False)
    assert bad.returncode != 0 and "/probes/named/liveness/timeoutSeconds" in bad.stderr
    unknown = helm("template", "test", str(CHART), "--set", "probes.named.liveness.delay=3", check=False)
    assert unknown.returncode != 0 and "delay" in unknown.stderr


def test_environment_of_init_agent_and_named() -> None:
    manifests = render({"zones": MINIMAL_ZONES})
    for name in AGENT_CONTAINERS:
        env = manifests.env(name)
        for variable, path in DOWNWARD.items():
            assert env[variable] == {"fieldPath": path}, f"{name}: {variable}"
        assert env["BIND_HA_LEASE_NAME"] == f"{FULLNAME}-leader"
        assert env["BIND_HA_PEER_SELECTOR"] == ",".join(
            f"{k}={v}" for k, v in sorted(SELECTOR_LABELS.items())
        )
        assert env["BIND_HA_LEASE_DURATION"] == "10"
        assert env["BIND_HA_RENEW_DEADLINE"] == "6"
        assert env["BIND_HA_TERMINATION_GRACE_PERIOD"] == "25"  # 30 less the 5 s preStop delay
        assert env["BIND_HA_RETRY_PERIOD"] == "2"
        assert env["BIND_HA_DNS_PORT"] == "5353"
        assert env["BIND_HA_ZONES_FILE"] == "/etc/bind-ha/zones/zones.yaml"
        assert "BIND_HA_ZONES_DIR" not in env
        assert env["BIND_HA_ZONES_DIR_TYPE"] == "static"
        assert env["BIND_HA_TSIG_DIR"] == "/etc/bind-ha/tsig"
        assert env["BIND_HA_TSIG_ALGORITHM"] == "hmac-sha256"
        assert env["BIND_HA_TRANSFER_KEY_NAME"] == "bind-ha-transfer"
        assert env["BIND_HA_UPDATE_KEY_NAME"] == "bind-ha-update"
        assert env["BIND_HA_RUN_DIR"] == "/var/run/bind-ha"
        assert env["BIND_HA_DATA_DIR"] == "/var/lib/bind-ha"
        assert env["PYTHONPATH"] == "/opt/bind-ha/python"


def test_environment_follows_values() -> None:
    manifests = render(
        {
            "election": {"leaseDurationSeconds": 4, "renewDeadlineSeconds": 2, "retryPeriodSeconds": 1.5},
            "terminationGracePeriodSeconds": 60,
            "shutdownDelaySeconds": 8,
            "tsig": {"algorithm": "hmac-sha512", "transferKeyName": "xfr", "updateKeyName": "upd"},
            "zonesConfigMap": "my-zones",
            "zonesDirType": "dynamic",
            "agent": {"logFormat": "json"},
        }
    )
    env = manifests.env("agent")
    assert (env["BIND_HA_LEASE_DURATION"], env["BIND_HA_RENEW_DEADLINE"], env["BIND_HA_RETRY_PERIOD"]) == (
        "4",
        "2",
        "1.5",
    )
    assert env["BIND_HA_TERMINATION_GRACE_PERIOD"] == "52"  # what is left when named gets SIGTERM
    assert env["BIND_HA_TSIG_ALGORITHM"] == "hmac-sha512"
    assert (env["BIND_HA_TRANSFER_KEY_NAME"], env["BIND_HA_UPDATE_KEY_NAME"]) == ("xfr", "upd")
    assert env["BIND_HA_ZONES_DIR"] == "/etc/bind-ha/zones.d"
    assert env["BIND_HA_ZONES_DIR_TYPE"] == "dynamic"
    assert env["BIND_HA_LOG_FORMAT"] == "json"


@pytest.mark.parametrize("container", AGENT_CONTAINERS)
def test_the_agents_settings_accept_the_chart_environment(container: str) -> None:
    """settings.load (what init, agent, named and the probe run first) accepts what the chart sets."""
    from bind_ha import settings

    manifests = render({"zones": MINIMAL_ZONES, "zonesConfigMap": "z"})
    env = manifests.env(container)
    unknown = [name for name in env if name.startswith("BIND_HA_") and name not in settings.ENVIRONMENT]
    assert not unknown, f"the chart sets variables the agent does not read: {unknown}"
    loaded = settings.load(fake_pod_env(env))
    assert loaded.lease_name == f"{FULLNAME}-leader"
    assert loaded.role_label == "bind-ha.io/role"
    assert loaded.zones_dir == Path("/etc/bind-ha/zones.d")
    assert loaded.health_port == 8080, "the probes and the metrics Service use port 8080"
    assert loaded.stats_port == 8053, "the exporter reads http://127.0.0.1:8053"
    assert loaded.dns_port == 5353


def volume_mounts(manifests: Manifests, container: str) -> dict[str, dict[str, Any]]:
    return {mount["name"]: mount for mount in manifests.container(container).get("volumeMounts", [])}


def test_scripts_are_mounted_from_configmaps() -> None:
    manifests = render()
    volumes = {volume["name"]: volume for volume in manifests.pod_spec["volumes"]}
    for kind in ("python", "hooks"):
        configmap = manifests.scripts(kind)
        assert volumes[kind]["configMap"]["name"] == configmap["metadata"]["name"]
        assert configmap["immutable"] is True
    for name in AGENT_CONTAINERS:
        mounts = volume_mounts(manifests, name)
        assert mounts["python"]["mountPath"] == "/opt/bind-ha/python/bind_ha"
        assert mounts["hooks"]["mountPath"] == "/opt/bind-ha/hooks"
        assert mounts["python"]["readOnly"] and mounts["hooks"]["readOnly"]


def test_shared_state_volumes() -> None:
    manifests = render()
    volumes = {volume["name"]: volume for volume in manifests.pod_spec["volumes"]}
    assert volumes["run"]["emptyDir"]["medium"] == "Memory"
    assert volumes["tmp"]["emptyDir"] is not None
    assert "emptyDir" in volumes["data"], "without persistence the data directory is an emptyDir"
    for name in AGENT_CONTAINERS:
        mounts = volume_mounts(manifests, name)
        assert mounts["run"]["mountPath"] == "/var/run/bind-ha"
        assert mounts["data"]["mountPath"] == "/var/lib/bind-ha"
        assert mounts["tmp"]["mountPath"] == "/tmp"
        assert not mounts["run"].get("readOnly") and not mounts["data"].get("readOnly")


def test_zones_and_keys_reach_init_and_agent_only() -> None:
    manifests = render({"zonesConfigMap": "my-zones"})
    volumes = {volume["name"]: volume for volume in manifests.pod_spec["volumes"]}
    assert volumes["zones"]["configMap"]["name"] == f"{FULLNAME}-zones"
    assert volumes["zones-dir"]["configMap"]["name"] == "my-zones"
    assert volumes["tsig"]["secret"]["secretName"] == f"{FULLNAME}-tsig"
    assert {item["key"] for item in volumes["tsig"]["secret"]["items"]} == {
        "transfer-secret",
        "update-secret",
    }
    for name in ("init", "agent"):
        mounts = volume_mounts(manifests, name)
        assert mounts["zones"]["mountPath"] == "/etc/bind-ha/zones"
        assert mounts["zones-dir"]["mountPath"] == "/etc/bind-ha/zones.d"
        assert mounts["tsig"]["mountPath"] == "/etc/bind-ha/tsig"
    named = volume_mounts(manifests, "named")
    assert not {"tsig", "zones", "zones-dir", "kube-api-access"} & set(named), "named needs none of these"


def test_zones_volume_is_mounted_as_given() -> None:
    source = {"persistentVolumeClaim": {"claimName": "zone-files", "readOnly": True}}
    manifests = render({"zonesVolume": source, "zonesDirType": "dynamic"})
    volumes = {volume["name"]: volume for volume in manifests.pod_spec["volumes"]}
    assert volumes["zones-dir"] == {"name": "zones-dir", **source}
    assert manifests.env("agent")["BIND_HA_ZONES_DIR"] == "/etc/bind-ha/zones.d"


def test_api_token_only_where_the_api_is_used() -> None:
    manifests = render()
    spec = manifests.pod_spec
    assert spec["automountServiceAccountToken"] is False
    assert spec["serviceAccountName"] == FULLNAME
    projected = next(v for v in spec["volumes"] if v["name"] == "kube-api-access")["projected"]
    token = next(s["serviceAccountToken"] for s in projected["sources"] if "serviceAccountToken" in s)
    assert token["path"] == "token" and token["expirationSeconds"] <= 3607
    for name in ("init", "agent"):
        mount = volume_mounts(manifests, name)["kube-api-access"]
        assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
        assert mount["readOnly"] is True
    assert "kube-api-access" not in volume_mounts(manifests, "named")


def test_termination_grace_period_allows_a_handover() -> None:
    assert render().pod_spec["terminationGracePeriodSeconds"] == 30
    assert render({"terminationGracePeriodSeconds": 60}).pod_spec["terminationGracePeriodSeconds"] == 60


def checksum(manifests: Manifests) -> str:
    value: str = manifests.statefulset["spec"]["template"]["metadata"]["annotations"]["checksum/scripts"]
    return value


def test_checksum_rolls_pods_when_scripts_change(tmp_path: Path) -> None:
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    before = parse(render_text(chart=copy))
    with (copy / "files" / "hooks" / "probe.py").open("a") as script:
        script.write("# changed\n")
    after = parse(render_text(chart=copy))
    assert len(checksum(before)) == 64
    assert checksum(before) != checksum(after)
    changed_package = tmp_path / "chart" / "files" / "bind_ha" / "settings.py"
    changed_package.write_text(changed_package.read_text() + "# changed\n")
    assert checksum(parse(render_text(chart=copy))) != checksum(after)


def test_checksum_is_stable_and_ignores_zone_changes() -> None:
    """Zones are applied live by the agent: changing them must not restart every pod."""
    plain = parse(render_text())  # uncached: the scripts are read now, for all three renders
    assert checksum(plain) == checksum(parse(render_text({"replicaCount": 3})))
    assert checksum(plain) == checksum(parse(render_text({"zones": MINIMAL_ZONES})))


def test_pod_annotations_and_labels() -> None:
    manifests = render({"podAnnotations": {"a.example/x": "1"}, "podLabels": {"team": "dns"}})
    metadata = manifests.statefulset["spec"]["template"]["metadata"]
    assert metadata["annotations"]["a.example/x"] == "1"
    assert metadata["labels"]["team"] == "dns"


def anti_affinity(manifests: Manifests) -> dict[str, Any] | None:
    affinity = manifests.pod_spec.get("affinity", {})
    result: dict[str, Any] | None = affinity.get("podAntiAffinity")
    return result


def test_anti_affinity_soft_by_default() -> None:
    rule = anti_affinity(render())
    assert rule is not None
    preferred = rule["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred[0]["podAffinityTerm"]["labelSelector"] == {"matchLabels": SELECTOR_LABELS}
    assert preferred[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in rule


def test_anti_affinity_hard() -> None:
    rule = anti_affinity(
        render({"antiAffinity": "hard", "antiAffinityTopologyKey": "topology.kubernetes.io/zone"})
    )
    assert rule is not None
    required = rule["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required == [
        {"labelSelector": {"matchLabels": SELECTOR_LABELS}, "topologyKey": "topology.kubernetes.io/zone"}
    ]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in rule


def test_anti_affinity_none() -> None:
    assert "affinity" not in render({"antiAffinity": "none"}).pod_spec


def test_custom_affinity_replaces_the_preset_and_keeps_the_rest() -> None:
    custom = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"tier": "dns"}}, "topologyKey": "rack"}
            ]
        }
    }
    assert render({"affinity": custom}).pod_spec["affinity"] == custom
    node: dict[str, Any] = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}
    }
    merged = render({"affinity": node, "antiAffinity": "hard"}).pod_spec["affinity"]
    assert merged["nodeAffinity"] == node["nodeAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in merged["podAntiAffinity"]


def test_topology_spread_constraints_get_the_release_selector() -> None:
    constraints = [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
        {
            "maxSkew": 2,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"own": "selector"}},
        },
    ]
    rendered = render({"topologySpreadConstraints": constraints}).pod_spec["topologySpreadConstraints"]
    assert rendered[0] == {**constraints[0], "labelSelector": {"matchLabels": SELECTOR_LABELS}}
    assert rendered[1] == constraints[1]
    assert "topologySpreadConstraints" not in render().pod_spec


def test_scheduling_values() -> None:
    spec = render(
        {
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dns", "operator": "Exists"}],
            "priorityClassName": "dns-critical",
            "imagePullSecrets": [{"name": "registry"}],
        }
    ).pod_spec
    assert spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert spec["tolerations"] == [{"key": "dns", "operator": "Exists"}]
    assert spec["priorityClassName"] == "dns-critical"
    assert spec["imagePullSecrets"] == [{"name": "registry"}]


def test_resources() -> None:
    named = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    agent = {"requests": {"cpu": "10m", "memory": "64Mi"}}
    manifests = render({"resources": named, "agent": {"resources": agent}})
    assert manifests.container("named")["resources"] == named
    merged = {**agent, "limits": {"memory": "768Mi"}}  # helm merges maps: the default limit stays
    assert manifests.container("agent")["resources"] == merged
    assert manifests.container("init")["resources"] == merged
    unlimited = render({"agent": {"resources": {"limits": None}}}).container("agent")["resources"]
    assert "limits" not in unlimited, "null removes a default"
    defaults = render()
    for container in ("named", "agent", "init"):
        assert defaults.container(container)["resources"]["limits"]["memory"], f"{container}: a memory limit"
    exporter = render({"metrics": {"exporter": {"enabled": True}}}).container("exporter")
    assert exporter["resources"]["limits"]["memory"] == "64Mi"
    assert defaults.test_pod["spec"]["containers"][0]["resources"]["limits"]["memory"]


def test_persistence_off_uses_an_emptydir() -> None:
    sts = render().statefulset
    assert "volumeClaimTemplates" not in sts["spec"]
    assert "persistentVolumeClaimRetentionPolicy" not in sts["spec"]


def test_persistence_on_uses_volume_claim_templates() -> None:
    manifests = render(
        {
            "persistence": {
                "enabled": True,
                "size": "5Gi",
                "storageClassName": "fast",
                "annotations": {"backup": "yes"},
                "retentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
            }
        }
    )
    spec = manifests.statefulset["spec"]
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert claim["metadata"]["annotations"] == {"backup": "yes"}
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Delete", "whenScaled": "Retain"}
    assert "data" not in {volume["name"] for volume in manifests.pod_spec["volumes"]}
    assert volume_mounts(manifests, "named")["data"]["mountPath"] == "/var/lib/bind-ha"


def test_persistence_storage_class_null_means_default_and_empty_means_none() -> None:
    default = render({"persistence": {"enabled": True}}).statefulset["spec"]["volumeClaimTemplates"][0]
    assert "storageClassName" not in default["spec"]
    static = render({"persistence": {"enabled": True, "storageClassName": ""}})
    assert static.statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == ""


def test_exporter_sidecar_reads_the_statistics_channel() -> None:
    assert [c["name"] for c in render().pod_spec["containers"]] == ["named"]
    manifests = render({"metrics": {"exporter": {"enabled": True}}})
    assert [c["name"] for c in manifests.pod_spec["containers"]] == ["named", "exporter"]
    exporter = manifests.container("exporter")
    assert "--bind.stats-url=http://127.0.0.1:8053" in exporter["args"]
    assert exporter["ports"] == [{"name": "exporter", "containerPort": 9119, "protocol": "TCP"}]
    assert exporter["image"].startswith("prometheuscommunity/bind-exporter:")


def test_service_links_are_off() -> None:
    """Service environment variables would crowd the agent's environment."""
    assert render().pod_spec["enableServiceLinks"] is False
