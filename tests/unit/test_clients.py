"""Per-client TSIG keys: parsing names every bad field; rendering narrows each key (pure)."""

from __future__ import annotations

import json

import pytest

from bind_ha.clients import ClientError, Grant, parse_clients
from bind_ha.render import render
from bind_ha.settings import RateLimit
from tests.unit.test_render import DYNAMIC, STATIC, view


def clients(*entries: object) -> str:
    return json.dumps(list(entries))


def test_presets_expand_to_narrow_grants() -> None:
    external, acme = parse_clients(
        clients(
            {"name": "External-DNS.", "preset": "external-dns"},
            {"name": "cm", "preset": "acme", "names": ["dyn.test", "www.dyn.test"]},
        )
    )
    assert external.name == "external-dns" and external.transfer
    assert external.grants == (Grant("zonesub", None, ("A", "AAAA", "CNAME", "TXT")),)
    assert acme.grants == (
        Grant("name", "_acme-challenge.dyn.test", ("TXT",)),
        Grant("name", "_acme-challenge.www.dyn.test", ("TXT",)),
    )
    assert not acme.transfer and acme.secret_file == "client-cm"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": 'x"; };'}, r"clients\[0\]\.name: .* is not a domain name"),
        ({"name": "c"}, r"clients\[0\] \(c\): give a preset"),
        ({"name": "c", "preset": "root"}, r"clients\[0\] \(c\)\.preset must be one of"),
        ({"name": "c", "preset": "acme"}, r"\.names: the acme preset needs"),
        ({"name": "c", "grants": [{"match": "self", "types": ["A"]}]}, r"grants\[0\]\.match must be"),
        ({"name": "c", "grants": [{"match": "name", "name": "a.test", "types": ["A; };"]}]}, r"types\[0\]"),
        ({"name": "c", "grants": [{"match": "name", "name": "a.test\n", "types": []}]}, r"at least one"),
        ({"name": "c", "grants": [{"match": "zonesub", "name": "a.test", "types": ["A"]}]}, r"takes no name"),
        ({"name": "c", "grants": [{"match": "wildcard", "name": "a.test", "types": ["A"]}]}, r"starts with"),
        ({"name": "c", "preset": "acme", "names": ["a..test"]}, r"names\[0\]: .* is not a domain name"),
        ({"name": "c", "preset": "acme", "names": ["a.test"], "transfer": "yes"}, r"transfer must be true"),
        ({"name": "c", "preset": "acme", "names": ["a.test"], "colour": 1}, r"unknown field\(s\): colour"),
    ],
)
def test_bad_clients_are_refused_naming_the_field(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ClientError, match=message):
        parse_clients(clients(entry))


def test_a_key_given_twice_and_garbage_are_refused() -> None:
    with pytest.raises(ClientError, match=r"clients\[1\]\.name: key c is given twice"):
        parse_clients(
            clients({"name": "c", "preset": "external-dns"}, {"name": "C.", "preset": "external-dns"})
        )
    for garbage in ("{", "{}", "[" * 100_000, json.dumps([{"name": "c"}] * 65)):
        with pytest.raises(ClientError):
            parse_clients(garbage)
    assert parse_clients("") == ()


def test_a_zone_only_gets_the_rules_within_it_and_static_zones_none() -> None:
    parsed = parse_clients(
        clients(
            {"name": "ed", "preset": "external-dns", "names": ["apps.dyn.test", "other.test"]},
            {
                "name": "mon",
                "zones": ["example.test"],
                "transfer": True,
                "grants": [{"match": "wildcard", "name": "*.dyn.test", "types": ["TXT"]}],
            },
        )
    )
    text = render(view("primary", clients=parsed))
    assert (
        'update-policy { grant "upd" zonesub ANY; grant "ed" subdomain apps.dyn.test. A AAAA CNAME TXT; };'
        in text
    )
    assert "other.test" not in text and '"mon" wildcard' not in text, "mon covers example.test only"
    zones = text.split('zone "')
    static = next(zone for zone in zones if zone.startswith(STATIC.name))
    dynamic = next(zone for zone in zones if zone.startswith(DYNAMIC.name))
    assert 'allow-transfer { key "xfr"; key "mon"; };' in static
    assert 'allow-transfer { key "xfr"; key "upd"; key "ed"; };' in dynamic


def test_secondaries_forward_every_client_key_unless_forwarding_is_off() -> None:
    parsed = parse_clients(clients({"name": "cm", "preset": "acme", "names": ["dyn.test"]}))
    text = render(view("secondary", clients=parsed))
    assert 'allow-update-forwarding { key "upd"; key "cm"; };' in text
    assert "allow-update-forwarding" not in render(view("secondary", update_forwarding=False))


def test_rate_limiting_and_minimal_any() -> None:
    assert "rate-limit" not in render(view("primary")) and "minimal-any yes;" in render(view("primary"))
    limit = RateLimit(responses_per_second=10, window=15, slip=2, exempt=("127.0.0.0/8", "10.0.0.0/8"))
    text = render(view("secondary", rrl=limit))
    assert "responses-per-second 10;" in text and "exempt-clients { 127.0.0.0/8; 10.0.0.0/8; };" in text
