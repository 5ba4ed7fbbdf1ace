"""Zone declarations: every error names the zone and the field (pure)."""

from __future__ import annotations

import pytest

from bind_ha.zonemodel import ZoneError, merge, normalize_name, parse_zones

BASE = {"name": "example.test", "nameservers": ["ns1.example.test."]}


def parsed(**changes: object) -> None:
    parse_zones([{**BASE, **changes}], "zones.yaml")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Example.TEST.", "example.test"),
        ("2.0.192.in-addr.arpa", "2.0.192.in-addr.arpa"),
        ("_tcp.example.test", "_tcp.example.test"),
    ],
)
def test_names_are_normalised(raw: str, name: str) -> None:
    assert normalize_name(raw, "here") == name


@pytest.mark.parametrize(
    "bad", ["", "a..b", "-a.test", "a-.test", "exa mple.test", 'x"y.test', "a" * 64 + ".test", "."]
)
def test_a_name_that_is_not_a_domain_is_rejected(bad: str) -> None:
    with pytest.raises(ZoneError, match=r"not a valid domain name|non-empty domain name"):
        parsed(name=bad)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "primary"}, "type must be static or dynamic"),
        ({"ttl": 0}, "zone example.test.ttl must be a positive integer"),
        ({"soa": {"refresh": -1}}, "zone example.test.soa.refresh"),
        ({"soa": {"serial": 5}}, "soa has unknown field(s): serial"),
        ({"nameservers": []}, "zone example.test.nameservers must list"),
        ({"colour": "blue"}, "unknown field(s): colour"),
        ({"file": "$TTL 1\n"}, "give either file or soa/nameservers/records"),
        ({"records": ["www A 1.2.3.4"]}, "records must be zone-file text"),
    ],
)
def test_bad_fields_are_named(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ZoneError) as rejected:
        parsed(**changes)
    assert field in str(rejected.value)
    assert str(rejected.value).startswith("zones.yaml: zone example.test")


def test_the_generated_text_has_soa_ns_and_the_records_after_a_known_offset() -> None:
    (zone,) = parse_zones([{**BASE, "ttl": 60, "records": "www IN A 192.0.2.1\n"}], "zones.yaml")
    lines = zone.text.splitlines()
    assert lines[0] == "$ORIGIN example.test."
    assert lines[2].startswith("@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 1209600 300")
    assert lines[zone.body_offset] == "www IN A 192.0.2.1"


def test_duplicate_zones_name_both_places() -> None:
    first = parse_zones([BASE], "zones.yaml")
    second = parse_zones([{**BASE, "name": "EXAMPLE.test."}], "other")
    with pytest.raises(
        ZoneError, match=r"example\.test is declared twice: zones\.yaml: zone example\.test and other"
    ):
        merge([first, second])


def test_a_list_is_required_and_empty_means_no_zones() -> None:
    assert parse_zones(None, "zones.yaml") == []
    with pytest.raises(ZoneError, match="must be a list"):
        parse_zones({"name": "x"}, "zones.yaml")
