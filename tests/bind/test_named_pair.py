"""Smoke test proving the named fixture runs real BIND: a TSIG-signed transfer."""

from __future__ import annotations

import subprocess

import dns.query
import dns.rcode
import dns.xfr
import dns.zone
import pytest

from tests.harness.named import NamedSet
from tests.harness.tools import tool

ZONE = """$TTL 300
@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 300
@ IN NS ns1.example.test.
ns1 IN A 192.0.2.1
www IN A 192.0.2.80
"""


def test_secondary_transfers_zone_over_tsig_and_unsigned_axfr_is_refused(named_set: NamedSet) -> None:
    primary, secondary = named_set.create(2)
    xfr = named_set.keys.xfr
    (primary.workdir / "example.test.db").write_text(ZONE)
    primary.start(
        primary.controls()
        + xfr.clause()
        + f"""
options {{ {primary.base_options()} allow-transfer {{ key "{xfr.name}"; }}; notify explicit;
          also-notify {{ {secondary.address} port {secondary.port} key "{xfr.name}"; }}; }};
zone "example.test" {{ type primary; file "example.test.db"; }};
"""
    )
    secondary.start(
        secondary.controls()
        + xfr.clause()
        + f"""
options {{ {secondary.base_options()} allow-notify {{ key "{xfr.name}"; }}; notify no; }};
zone "example.test" {{ type secondary; file "example.test.db";
  primaries {{ {primary.address} port {primary.port} key "{xfr.name}"; }}; }};
"""
    )
    secondary.wait_for_serial("example.test", 1)
    dig = subprocess.run(
        [tool("dig"), "+short", "-p", str(secondary.port), f"@{secondary.address}", "www.example.test", "A"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert dig.stdout.strip() == "192.0.2.80"

    signed = dns.zone.from_xfr(
        dns.query.xfr(
            primary.address, "example.test", port=primary.port, keyring=xfr.keyring(), keyname=xfr.name
        )
    )
    assert signed.get_rdataset("www", "A") is not None
    with pytest.raises(dns.xfr.TransferError) as unsigned:
        dns.zone.from_xfr(dns.query.xfr(primary.address, "example.test", port=primary.port))
    assert unsigned.value.rcode == dns.rcode.REFUSED


def test_instances_stop_when_asked(named_set: NamedSet) -> None:
    (only,) = named_set.create(1)
    only.start(only.controls() + f"options {{ {only.base_options()} }};\n")
    assert only.rndc("status").returncode == 0
    named_set.stop_all()
    assert only.process is None
