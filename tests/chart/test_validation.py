"""Bad values fail `helm template` with a message that names the value at fault."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart.helm import MINIMAL_ZONES, render, render_error

ZONE = MINIMAL_ZONES[0]

BAD_VALUES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("zero replicas", {"replicaCount": 0}, ["replicaCount"]),
    ("negative replicas", {"replicaCount": -1}, ["replicaCount"]),
    (
        "lease equal to renew deadline",
        {"election": {"leaseDurationSeconds": 7, "renewDeadlineSeconds": 7}},
        ["election.leaseDurationSeconds", "election.renewDeadlineSeconds"],
    ),
    (
        "lease below renew deadline",
        {"election": {"leaseDurationSeconds": 5, "renewDeadlineSeconds": 7}},
        ["election.leaseDurationSeconds"],
    ),
    (
        "renew deadline not above 1.2 x retry period",
        {"election": {"leaseDurationSeconds": 10, "renewDeadlineSeconds": 6, "retryPeriodSeconds": 5}},
        ["election.renewDeadlineSeconds", "election.retryPeriodSeconds"],
    ),
    (
        "no room for a request timeout and the fence between renew deadline and lease",
        {"election": {"leaseDurationSeconds": 10, "renewDeadlineSeconds": 7}},
        ["election.leaseDurationSeconds (10)", "election.renewDeadlineSeconds (7)", "4 s"],
    ),
    ("zero retry period", {"election": {"retryPeriodSeconds": 0}}, ["retryPeriodSeconds"]),
    ("unknown anti-affinity mode", {"antiAffinity": "sometimes"}, ["antiAffinity"]),
    (
        "duplicate zone names",
        {"zones": [ZONE, {**ZONE, "name": "Example.COM."}]},
        ["zones[1].name", "example.com", "declared twice"],
    ),
    (
        "zone name with an empty label",
        {"zones": [{**ZONE, "name": "bad..example"}]},
        ["zones[0].name", "bad..example"],
    ),
    ("zone name with a space", {"zones": [{**ZONE, "name": "not a domain"}]}, ["zones[0].name"]),
    ("zone name starting with a dash", {"zones": [{**ZONE, "name": "-x.example"}]}, ["zones[0].name"]),
    ("zone name label too long", {"zones": [{**ZONE, "name": "a" * 64 + ".example"}]}, ["zones[0].name"]),
    ("zone name not a string", {"zones": [{**ZONE, "name": 42}]}, ["/zones/0/name"]),
    ("zone without a name", {"zones": [{"nameservers": ["ns1.example."]}]}, ["/zones/0", "name"]),
    ("zone without name servers", {"zones": [{"name": "example.com"}]}, ["zones[0].nameservers"]),
    (
        "zone with file and records",
        {"zones": [{**ZONE, "file": "$TTL 1\n"}]},
        ["zones[0]", "either file or soa/nameservers/records"],
    ),
    ("unknown zone type", {"zones": [{**ZONE, "type": "master"}]}, ["/zones/0/type"]),
    ("unknown top-level key", {"replicas": 3}, ["replicas"]),
    ("unknown nested key", {"election": {"leaseDuration": 10}}, ["/election", "leaseDuration"]),
    ("unknown zone key", {"zones": [{**ZONE, "recordz": "x"}]}, ["/zones/0", "recordz"]),
    ("unknown soa key", {"zones": [{**ZONE, "soa": {"serial": 5}}]}, ["/zones/0/soa", "serial"]),
    ("unknown service key", {"service": {"dns": {"targetPort": 53}}}, ["/service/dns", "targetPort"]),
    ("unknown service type", {"service": {"dns": {"type": "ExternalName"}}}, ["/service/dns/type"]),
    ("unknown tsig algorithm", {"tsig": {"algorithm": "hmac-md5"}}, ["/tsig/algorithm"]),
    ("unknown zones directory type", {"zonesDirType": "master"}, ["zonesDirType"]),
    (
        "zones from a ConfigMap and a volume",
        {"zonesConfigMap": "z", "zonesVolume": {"emptyDir": {}}},
        ["zonesConfigMap", "zonesVolume"],
    ),
    (
        "same name for both TSIG keys",
        {"tsig": {"transferKeyName": "key", "updateKeyName": "KEY."}},
        ["tsig.transferKeyName", "tsig.updateKeyName"],
    ),
    ("TSIG key name not a domain", {"tsig": {"updateKeyName": "bad key"}}, ["tsig.updateKeyName"]),
    (
        "ServiceMonitor without the metrics Service",
        {"metrics": {"serviceMonitor": {"enabled": True}}},
        ["metrics.serviceMonitor.enabled", "metrics.enabled"],
    ),
    (
        "node port on a ClusterIP Service",
        {"service": {"primary": {"nodePort": 30053}}},
        ["service.primary.nodePort"],
    ),
    (
        "PodDisruptionBudget without a bound",
        {"podDisruptionBudget": {"maxUnavailable": None, "minAvailable": None}},
        ["podDisruptionBudget"],
    ),
    ("bad log format", {"agent": {"logFormat": "xml"}}, ["/agent/logFormat"]),
    (
        "bad persistence access mode",
        {"persistence": {"accessModes": ["RWO"]}},
        ["/persistence/accessModes/0"],
    ),
]


@pytest.mark.parametrize(
    ("values", "fields"), [case[1:] for case in BAD_VALUES], ids=[case[0] for case in BAD_VALUES]
)
def test_bad_values_fail_naming_the_field(values: dict[str, Any], fields: list[str]) -> None:
    error = render_error(values)
    for field in fields:
        assert field in error, f"the error does not name {field!r}:\n{error}"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"replicaCount": 0}, "replicaCount must be at least 1"),
        ({"antiAffinity": "sometimes"}, "antiAffinity must be one of soft, hard, none"),
        ({"zonesDirType": "master"}, "zonesDirType must be static or dynamic"),
        (
            {"election": {"leaseDurationSeconds": 1, "renewDeadlineSeconds": 7}},
            "election.leaseDurationSeconds (1)",
        ),
    ],
    ids=["replicas", "antiAffinity", "zonesDirType", "election"],
)
def test_template_checks_hold_without_the_schema(values: dict[str, Any], field: str) -> None:
    """--skip-schema-validation does not let nonsense through: the templates check too."""
    assert field in render_error(values, extra=["--skip-schema-validation"])


@pytest.mark.parametrize(
    "values",
    [
        {"election": {"leaseDurationSeconds": 4, "renewDeadlineSeconds": 2, "retryPeriodSeconds": 1.6}},
        {"election": {"leaseDurationSeconds": 20, "renewDeadlineSeconds": 12, "retryPeriodSeconds": 2}},
        {
            "zones": [
                {**ZONE, "name": "2.0.192.in-addr.arpa"},
                {**ZONE, "name": "_acme-challenge.example.com."},
            ]
        },
        {"zones": [{"name": "example.net", "file": "$TTL 60\n@ IN SOA ns1. h. 1 2 3 4 5\n@ IN NS ns1.\n"}]},
        {"antiAffinity": "none"},
        {"replicaCount": 1},
    ],
    ids=[
        "tight-election",
        "slow-election",
        "reverse-and-underscore",
        "file-zone",
        "no-anti-affinity",
        "one-replica",
    ],
)
def test_good_values_render(values: dict[str, Any]) -> None:
    assert render(values).statefulset


def test_error_message_of_the_election_rule_is_readable() -> None:
    error = render_error({"election": {"leaseDurationSeconds": 7, "renewDeadlineSeconds": 7}})
    assert "election.leaseDurationSeconds (7) must be greater than election.renewDeadlineSeconds (7)" in error
