"""Zone sources checked and compiled by BIND's own tools (real named-compilezone)."""

from __future__ import annotations

import pathlib

import pytest

from bind_ha import zonefiles
from bind_ha.zonemodel import ZoneError, parse_zones, zone_from_file

ZONE = {
    "name": "example.test",
    "ttl": 300,
    "nameservers": ["ns1.example.test."],
    "soa": {"mname": "ns1.example.test.", "rname": "hostmaster.example.test."},
    "records": "ns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n",
}


def test_a_declared_zone_compiles_with_the_serial_the_agent_chooses(tmp_path: pathlib.Path) -> None:
    (spec,) = parse_zones([ZONE], "zones.yaml")
    canonical = zonefiles.canonicalize(spec, workdir=tmp_path)
    assert "www.example.test." in canonical.text
    raw = zonefiles.write_raw(canonical, 4242, tmp_path / "zones")
    assert raw.name == "example.test.db" and raw.read_bytes()[:4] != b"$TTL"  # raw, not text
    assert " 4242 " in canonical.with_serial(4242)


def test_a_broken_record_is_rejected_naming_the_zone_and_its_line(tmp_path: pathlib.Path) -> None:
    broken = dict(ZONE, records="ns1 IN A 192.0.2.1\nwww IN A not-an-address\n")
    (spec,) = parse_zones([broken], "zones.yaml")
    with pytest.raises(ZoneError) as rejected:
        zonefiles.canonicalize(spec, workdir=tmp_path)
    message = str(rejected.value)
    assert "zone example.test" in message and "records line 2" in message, message


def test_a_whole_zone_file_reports_its_own_line_numbers(tmp_path: pathlib.Path) -> None:
    text = "$TTL 60\n@ IN SOA ns1 host 7 60 60 60 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nbad IN BOGUS x\n"
    spec = zone_from_file(
        "2.0.192.in-addr.arpa.zone", text.replace("ns1 IN A 192.0.2.1\n", ""), "static", "dir"
    )
    with pytest.raises(ZoneError, match=r"2\.0\.192\.in-addr\.arpa\.zone: line 4: unknown RR type 'BOGUS'"):
        zonefiles.canonicalize(spec, workdir=tmp_path)


def test_a_zone_without_address_for_its_in_zone_name_server_is_rejected(tmp_path: pathlib.Path) -> None:
    (spec,) = parse_zones([dict(ZONE, records="www IN A 192.0.2.80\n")], "zones.yaml")
    with pytest.raises(ZoneError, match=r"zone example\.test"):
        zonefiles.canonicalize(spec, workdir=tmp_path)


def test_the_source_serial_is_kept_for_the_agent_to_respect(tmp_path: pathlib.Path) -> None:
    text = "$TTL 60\n@ IN SOA ns1 host 2026112501 60 60 60 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
    canonical = zonefiles.canonicalize(
        zone_from_file("example.test.zone", text, "static", "d"), workdir=tmp_path
    )
    assert canonical.source_serial == 2026112501


def test_sources_merge_values_and_a_zone_directory(tmp_path: pathlib.Path) -> None:
    zones_file = tmp_path / "zones.yaml"
    zones_file.write_text("- name: example.test\n  nameservers: [ns1.example.test.]\n")
    directory = tmp_path / "dir"
    (directory / "..data").mkdir(parents=True)  # a ConfigMap volume's bookkeeping is ignored
    (directory / "other.test.zone").write_text("$TTL 60\n@ IN SOA ns host 1 1 1 1 1\n@ IN NS ns.example.\n")
    (directory / "README").write_text("not a zone")
    zones = zonefiles.load_sources(zones_file, directory, "dynamic")
    assert [(zone.name, zone.type) for zone in zones] == [
        ("example.test", "static"),
        ("other.test", "dynamic"),
    ]
    (directory / "example.test.zone").write_text("$TTL 60\n")
    with pytest.raises(ZoneError, match="declared twice"):
        zonefiles.load_sources(zones_file, directory, "static")
