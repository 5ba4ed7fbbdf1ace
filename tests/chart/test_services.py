"""The DNS, primary, headless and metrics Services, the PodDisruptionBudget and the NetworkPolicy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.helm import FULLNAME, ROLE_LABEL, SELECTOR_LABELS, Manifests, render

DNS_PORTS = [
    {"name": "dns-udp", "port": 53, "protocol": "UDP", "targetPort": "dns"},
    {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": "dns-tcp"},
]


def service(manifests: Manifests, suffix: str) -> dict[str, Any]:
    return manifests.get("Service", f"{FULLNAME}-{suffix}")


def test_the_release_has_three_services_by_default() -> None:
    names = sorted(svc["metadata"]["name"] for svc in render().all("Service"))
    assert names == [f"{FULLNAME}-dns", f"{FULLNAME}-headless", f"{FULLNAME}-primary"]


def test_dns_service_reaches_every_pod_on_udp_and_tcp() -> None:
    spec = service(render(), "dns")["spec"]
    assert spec["type"] == "ClusterIP"
    assert spec["selector"] == SELECTOR_LABELS, "queries go to every ready pod, whatever its role"
    assert spec["ports"] == DNS_PORTS
    assert "publishNotReadyAddresses" not in spec


def test_primary_service_reaches_only_the_primary() -> None:
    spec = service(render(), "primary")["spec"]
    assert spec["selector"] == {**SELECTOR_LABELS, ROLE_LABEL: "primary"}
    assert spec["ports"] == DNS_PORTS


def test_headless_service_publishes_every_pod() -> None:
    spec = service(render(), "headless")["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["publishNotReadyAddresses"] is True
    assert spec["selector"] == SELECTOR_LABELS
    assert {(port["protocol"], port["port"]) for port in spec["ports"]} == {("UDP", 5353), ("TCP", 5353)}


@pytest.mark.parametrize("suffix", ["dns", "primary", "headless"])
def test_target_ports_name_a_container_port_of_the_same_protocol(suffix: str) -> None:
    """A named targetPort resolves only to a container port with that name AND protocol."""
    manifests = render()
    container_ports = {(port["name"], port["protocol"]) for port in manifests.container("named")["ports"]}
    for port in service(manifests, suffix)["spec"]["ports"]:
        assert (port["targetPort"], port["protocol"]) in container_ports, port


def test_dns_service_as_load_balancer() -> None:
    manifests = render(
        {
            "service": {
                "dns": {
                    "type": "LoadBalancer",
                    "port": 53,
                    "externalTrafficPolicy": "Local",
                    "loadBalancerClass": "example.com/lb",
                    "loadBalancerSourceRanges": ["192.0.2.0/24"],
                    "annotations": {"lb.example/pool": "dns"},
                    "nodePort": 30053,
                }
            }
        }
    )
    svc = service(manifests, "dns")
    assert svc["metadata"]["annotations"] == {"lb.example/pool": "dns"}
    spec = svc["spec"]
    assert spec["type"] == "LoadBalancer"
    assert spec["externalTrafficPolicy"] == "Local"
    assert spec["loadBalancerClass"] == "example.com/lb"
    assert spec["loadBalancerSourceRanges"] == ["192.0.2.0/24"]
    assert [(port["protocol"], port["nodePort"]) for port in spec["ports"]] == [
        ("UDP", 30053),
        ("TCP", 30053),
    ]
    assert service(manifests, "primary")["spec"]["type"] == "ClusterIP", "each Service has its own type"


def test_node_port_services() -> None:
    manifests = render(
        {"service": {"primary": {"type": "NodePort", "port": 5300}, "dns": {"clusterIP": "10.96.0.53"}}}
    )
    primary = service(manifests, "primary")["spec"]
    assert primary["type"] == "NodePort"
    assert [port["port"] for port in primary["ports"]] == [5300, 5300]
    assert all("nodePort" not in port for port in primary["ports"]), "allocated when not given"
    assert service(manifests, "dns")["spec"]["clusterIP"] == "10.96.0.53"


def test_cluster_ip_services_carry_no_load_balancer_fields() -> None:
    spec = service(render({"service": {"dns": {"loadBalancerSourceRanges": ["192.0.2.0/24"]}}}), "dns")[
        "spec"
    ]
    assert "loadBalancerSourceRanges" not in spec and "externalTrafficPolicy" not in spec


def test_pod_disruption_budget_allows_one_pod_down_by_default() -> None:
    pdb = render().get("PodDisruptionBudget")
    assert pdb["metadata"]["name"] == FULLNAME
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["selector"] == {"matchLabels": SELECTOR_LABELS}
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_pod_disruption_budget_min_available_and_disabled() -> None:
    spec = render({"podDisruptionBudget": {"minAvailable": "60%"}}).get("PodDisruptionBudget")["spec"]
    assert spec["minAvailable"] == "60%" and "maxUnavailable" not in spec
    assert not render({"podDisruptionBudget": {"enabled": False}}).has("PodDisruptionBudget")


def test_network_policy_is_optional() -> None:
    assert not render().has("NetworkPolicy")


def test_network_policy_admits_peers_clients_and_scrapers() -> None:
    clients = [{"ipBlock": {"cidr": "192.0.2.0/24"}}]
    scrapers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    policy = render(
        {
            "networkPolicy": {"enabled": True, "dnsFrom": clients, "metricsFrom": scrapers},
            "metrics": {"exporter": {"enabled": True}},
        }
    ).get("NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"] == {"matchLabels": SELECTOR_LABELS}
    assert spec["policyTypes"] == ["Ingress"]
    peers, dns, metrics = spec["ingress"]
    dns_ports = [{"port": 5353, "protocol": "UDP"}, {"port": 5353, "protocol": "TCP"}]
    # the release's own pods (transfers, NOTIFY, forwarded updates) and its test pod
    assert peers["from"] == [
        {"podSelector": {"matchLabels": {k: v for k, v in SELECTOR_LABELS.items() if "component" not in k}}}
    ]
    # ... which also reach named's probe port: the test pod reads each pod's /zones
    assert peers["ports"] == [*dns_ports, {"port": 8081, "protocol": "TCP"}]
    assert dns == {"from": clients, "ports": dns_ports}
    assert metrics == {
        "from": scrapers,
        "ports": [{"port": 8080, "protocol": "TCP"}, {"port": 9119, "protocol": "TCP"}],
    }


def test_network_policy_without_peers_lists_admits_any_source() -> None:
    spec = render({"networkPolicy": {"enabled": True}}).get("NetworkPolicy")["spec"]
    _peers, dns, metrics = spec["ingress"]
    assert "from" not in dns and "from" not in metrics
    assert metrics["ports"] == [{"port": 8080, "protocol": "TCP"}]


def test_metrics_service_and_service_monitor() -> None:
    assert not render().has("ServiceMonitor")
    manifests = render(
        {
            "metrics": {
                "enabled": True,
                "exporter": {"enabled": True},
                "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}, "interval": "15s"},
            }
        }
    )
    svc = service(manifests, "metrics")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == SELECTOR_LABELS
    assert {(port["name"], port["port"], port["targetPort"]) for port in svc["spec"]["ports"]} == {
        ("agent", 8080, "health"),
        ("exporter", 9119, "exporter"),
    }
    monitor = manifests.get("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= svc["metadata"]["labels"].items(), (
        "the ServiceMonitor selects the metrics Service"
    )
    assert [(e["port"], e["path"], e["interval"]) for e in monitor["spec"]["endpoints"]] == [
        ("agent", "/metrics", "15s"),
        ("exporter", "/metrics", "15s"),
    ]


def test_metrics_service_without_exporter_scrapes_the_agent_only() -> None:
    svc = service(render({"metrics": {"enabled": True}}), "metrics")
    assert [port["name"] for port in svc["spec"]["ports"]] == ["agent"]
