"""The agent's named.conf on a real named: narrowed client keys, transfers, RRL, serial lifts
(issue 10, findings 4, 7 and 8).

Each test renders named.conf with render.py, exactly as the agent does, and attacks it.
"""

from __future__ import annotations

import pathlib
import socket
from collections.abc import Callable
from dataclasses import replace

import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.update
import dns.xfr
import pytest

from bind_ha import peers, zonefiles
from bind_ha.bind import Bind
from bind_ha.clients import parse_clients
from bind_ha.keys import TsigKey
from bind_ha.render import BLUE, NamedView, ViewSpec, render, zone_directory
from bind_ha.settings import RateLimit
from bind_ha.zonemodel import parse_zones
from tests.harness.named import NamedInstance, NamedSet, new_secret

STATIC = {"name": "example.test", "ttl": 60, "nameservers": ["ns1.example.test."],
          "records": "ns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n"}  # fmt: skip
DYNAMIC = {"name": "dyn.test", "type": "dynamic", "ttl": 60, "nameservers": ["ns1.example.test."]}
CLIENTS = """[
  {"name": "external-dns", "preset": "external-dns"},
  {"name": "external-dns-apps", "preset": "external-dns", "names": ["apps.dyn.test"]},
  {"name": "cert-manager", "preset": "acme", "names": ["dyn.test", "www.dyn.test"]},
  {"name": "monitor", "zones": ["example.test"], "transfer": true,
   "grants": [{"match": "name", "name": "probe.dyn.test", "types": ["TXT"]}]}
]"""
Send = Callable[..., str]


class Server:
    """One named running the agent's primary (or secondary) rendering, and its keys."""

    def __init__(self, instance: NamedInstance, workdir: pathlib.Path, **changes: object) -> None:
        self.instance = instance
        self.keys = {
            name: TsigKey(name, "hmac-sha256", new_secret())
            for name in ("xfr", "upd", "external-dns", "external-dns-apps", "cert-manager", "monitor")
        }
        self.keys["rndc"] = TsigKey(instance.rndc_key.name, "hmac-sha256", instance.rndc_key.secret)
        specs = parse_zones([STATIC, DYNAMIC], "zones.yaml")
        for spec in specs:
            canonical = zonefiles.canonicalize(spec, workdir=workdir / "scratch")
            zonefiles.write_raw(canonical, 1, workdir / "data" / zone_directory(BLUE))
        dynamic = frozenset(spec.name for spec in specs if spec.dynamic)
        view = NamedView(
            identity="t/u", views=(ViewSpec(BLUE, "primary", writable=dynamic),), zones=tuple(specs),
            peers=(),
            keys=tuple(self.keys.values()), transfer_key="xfr", update_key="upd",
            rndc_key_name=instance.rndc_key.name, dns_port=instance.port,
            listen_address=instance.address, control_address=instance.address,
            control_port=instance.control_port, stats_port=8053,
            data_dir=workdir / "data", run_dir=workdir / "run", clients=parse_clients(CLIENTS),
        )  # fmt: skip
        (workdir / "run").mkdir(parents=True, exist_ok=True)
        self.view = replace(view, **changes)  # type: ignore[arg-type]
        instance.start(render(self.view))

    def update(self, key: str, zone: str, edit: Callable[[dns.update.UpdateMessage], None]) -> str:
        tsig = self.keys[key]
        message = dns.update.UpdateMessage(
            zone,
            keyring={dns.name.from_text(tsig.name): dns.tsig.Key(tsig.name, tsig.secret, tsig.algorithm)},
        )
        edit(message)
        answer = dns.query.tcp(message, self.instance.address, port=self.instance.port, timeout=10)
        return dns.rcode.to_text(answer.rcode())

    def axfr(self, key: str, zone: str) -> str:
        tsig = self.keys[key]
        keyring = {dns.name.from_text(tsig.name): dns.tsig.Key(tsig.name, tsig.secret, tsig.algorithm)}
        try:
            list(
                dns.query.xfr(
                    self.instance.address, zone, port=self.instance.port, keyring=keyring, lifetime=10
                )
            )
        except dns.xfr.TransferError as error:
            return dns.rcode.to_text(error.rcode)
        return "NOERROR"

    def rrset(self, name: str, rdtype: str) -> list[str]:
        query = dns.message.make_query(name, rdtype)
        reply = dns.query.tcp(query, self.instance.address, port=self.instance.port, timeout=5)
        return sorted(rdata.to_text() for rrset in reply.answer for rdata in rrset)


@pytest.fixture
def server(named_set: NamedSet, tmp_path: pathlib.Path) -> Server:
    (instance,) = named_set.create(1)
    return Server(instance, tmp_path)


def add(name: str, rdtype: str, text: str) -> Callable[[dns.update.UpdateMessage], None]:
    return lambda message: message.add(name, 60, rdtype, text)


def apex_ns(message: dns.update.UpdateMessage) -> None:
    message.replace("@", 60, "NS", "evil.example.org.")


def apex_soa(message: dns.update.UpdateMessage) -> None:
    message.replace("@", 60, "SOA", "evil.example.org. h.evil.example.org. 99 60 60 60 60")


def wipe_apex(message: dns.update.UpdateMessage) -> None:
    message.delete("@")


def test_an_external_dns_key_writes_its_record_types_but_never_the_apex_ns_or_soa(server: Server) -> None:
    assert server.update("external-dns", "dyn.test", add("www", "A", "192.0.2.10")) == "NOERROR"
    assert (
        server.update("external-dns", "dyn.test", add("www", "TXT", '"heritage=external-dns"')) == "NOERROR"
    )
    assert server.update("external-dns", "dyn.test", add("@", "A", "192.0.2.11")) == "NOERROR"
    for attack in (
        apex_ns,
        apex_soa,
        add("sub", "NS", "evil.example.org."),
        add("mail", "MX", "10 evil.org."),
    ):
        assert server.update("external-dns", "dyn.test", attack) == "REFUSED"
    server.update("external-dns", "dyn.test", wipe_apex)  # may delete its own apex A, never NS or SOA
    assert server.rrset("dyn.test", "NS") == ["ns1.example.test."]
    assert server.rrset("dyn.test", "SOA")[0].startswith("ns1.example.test. hostmaster.dyn.test.")
    assert server.axfr("external-dns", "dyn.test") == "NOERROR", "ExternalDNS lists records by AXFR"
    assert server.axfr("external-dns", "example.test") == "REFUSED", "not the static zones"


def test_an_external_dns_key_limited_to_names_stays_under_them(server: Server) -> None:
    assert server.update("external-dns-apps", "dyn.test", add("web.apps", "A", "192.0.2.12")) == "NOERROR"
    assert server.update("external-dns-apps", "dyn.test", add("apps", "TXT", '"x"')) == "NOERROR"
    assert server.update("external-dns-apps", "dyn.test", add("www", "A", "192.0.2.13")) == "REFUSED"
    assert server.update("external-dns-apps", "dyn.test", apex_ns) == "REFUSED"


def test_an_acme_key_writes_only_its_challenge_txt_records(server: Server) -> None:
    for name in ("_acme-challenge", "_acme-challenge.www"):
        assert server.update("cert-manager", "dyn.test", add(name, "TXT", '"token"')) == "NOERROR"
    for attack in (
        add("_acme-challenge", "A", "192.0.2.66"),
        add("_acme-challenge.other", "TXT", '"token"'),
        add("www", "TXT", '"token"'),
        apex_ns,
        apex_soa,
    ):
        assert server.update("cert-manager", "dyn.test", attack) == "REFUSED"
    assert server.axfr("cert-manager", "dyn.test") == "REFUSED"


def test_a_custom_grant_and_a_transfer_right_for_a_static_zone(server: Server) -> None:
    assert server.update("monitor", "dyn.test", add("probe", "TXT", '"ok"')) == "REFUSED", (
        "zones: example.test"
    )
    assert server.axfr("monitor", "example.test") == "NOERROR"
    assert server.axfr("monitor", "dyn.test") == "REFUSED"


def test_the_update_key_transfers_dynamic_zones_but_not_static_ones(server: Server) -> None:
    """Before: the update key (held by every client) could AXFR every zone."""
    assert server.axfr("upd", "example.test") == "REFUSED"
    assert server.axfr("upd", "dyn.test") == "NOERROR"
    assert server.axfr("xfr", "example.test") == "NOERROR"
    assert server.update("upd", "dyn.test", apex_ns) == "NOERROR", "the update key stays the admin key"


def test_update_key_transfers_all_and_none(named_set: NamedSet, tmp_path: pathlib.Path) -> None:
    first, second = named_set.create(2)
    everything = Server(first, tmp_path / "a", update_key_transfers="all")
    assert everything.axfr("upd", "example.test") == "NOERROR"
    nothing = Server(second, tmp_path / "b", update_key_transfers="none")
    assert nothing.axfr("upd", "dyn.test") == "REFUSED"


def answered(server: Server, count: int) -> int:
    """How many of `count` identical UDP queries got a full (not truncated) answer."""
    query = dns.message.make_query("www.example.test", "A")
    query.flags &= ~dns.flags.RD
    full = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        for _ in range(count):
            sock.sendto(query.to_wire(), (server.instance.address, server.instance.port))
            try:
                reply = dns.message.from_wire(sock.recv(4096))
            except (TimeoutError, OSError):
                continue
            full += not reply.flags & dns.flags.TC
    return full


def test_response_rate_limiting_limits_a_flood_from_one_client(
    named_set: NamedSet, tmp_path: pathlib.Path
) -> None:
    limited_instance, open_instance = named_set.create(2)
    rrl = RateLimit(responses_per_second=5, window=5, slip=2, exempt=("192.0.2.0/24",))
    limited = Server(limited_instance, tmp_path / "a", rrl=rrl)
    assert "rate-limit {" in limited_instance.conf_path.read_text()
    assert answered(limited, 60) < 30, "most of a burst of 60 identical queries is dropped or truncated"
    unlimited = Server(open_instance, tmp_path / "b")
    assert answered(unlimited, 60) == 60


def test_any_queries_over_udp_get_one_rrset(server: Server) -> None:
    """minimal-any: no amplification through ANY over UDP (TCP, which cannot be spoofed, gets all)."""
    query = dns.message.make_query("dyn.test", "ANY")
    address, port = server.instance.address, server.instance.port
    assert len(dns.query.udp(query, address, port=port, timeout=5).answer) == 1
    assert len(dns.query.tcp(query, address, port=port, timeout=5).answer) == 2


def test_bind_ignores_a_serial_lifted_past_rfc_1982_range_and_the_read_back_catches_it(
    server: Server,
) -> None:
    """Why roles._lift_serial reads the SOA back: BIND answers NOERROR and keeps the old serial."""
    bind = Bind(server.instance.workdir / "rndc.conf", server.instance.address, server.instance.port)
    before = bind.serial("dyn.test")
    assert before is not None
    forged = before + 2**31 + 10
    bind.set_serial("dyn.test", forged, server.keys["upd"])
    after = bind.serial("dyn.test")
    assert after == before
    assert peers.lift_problem("dyn.test", before=before, target=forged, after=after) is not None
    good = peers.serial_add(before, 1000)
    bind.set_serial("dyn.test", good, server.keys["upd"])
    assert peers.lift_problem("dyn.test", before=before, target=good, after=bind.serial("dyn.test")) is None
