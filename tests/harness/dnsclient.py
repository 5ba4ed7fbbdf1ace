"""Real DNS clients for the tests: dnspython and BIND's nsupdate/dig."""

from __future__ import annotations

import socket
import subprocess

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring
import dns.update
import dns.xfr
import dns.zone

from tests.harness.tools import tool

ALGORITHM = "hmac-sha256"


def keyring(name: str, secret: str) -> dict[dns.name.Name, dns.tsig.Key]:
    return dns.tsigkeyring.from_text({name: (ALGORITHM, secret)})  # type: ignore[no-any-return]


def update(
    address: str,
    port: int,
    zone: str,
    *,
    add: dict[str, str] | None = None,
    key: tuple[str, str] | None = None,
    timeout: float = 5.0,
) -> str:
    """Send one RFC 2136 update (A records name -> ip) with dnspython; returns the rcode text."""
    message = dns.update.UpdateMessage(
        zone, keyring=keyring(*key) if key else None, keyname=dns.name.from_text(key[0]) if key else None
    )
    for name, ip in (add or {}).items():
        message.add(name, 300, "A", ip)
    try:
        answer = dns.query.tcp(message, address, port=port, timeout=timeout)
    except (OSError, dns.exception.DNSException) as error:
        return f"ERROR:{type(error).__name__}"
    return dns.rcode.to_text(answer.rcode())


def nsupdate(
    address: str, port: int, zone: str, commands: list[str], key: tuple[str, str]
) -> subprocess.CompletedProcess[str]:
    """BIND's own nsupdate, signing with -y."""
    script = "\n".join([f"server {address} {port}", f"zone {zone}", *commands, "send", ""])
    return subprocess.run(
        [tool("nsupdate"), "-t", "5", "-y", f"{ALGORITHM}:{key[0]}:{key[1]}"],
        input=script,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def axfr(address: str, port: int, zone: str, key: tuple[str, str] | None) -> list[str]:
    """The zone's records, sorted, as text lines (raises dns.xfr.TransferError when refused)."""
    transferred = dns.zone.from_xfr(
        dns.query.xfr(
            address,
            zone,
            port=port,
            keyring=keyring(*key) if key else None,
            keyname=dns.name.from_text(key[0]) if key else None,
            lifetime=30,
        )
    )
    return sorted(transferred.to_text().splitlines())


def lookup(address: str, port: int, name: str, rdtype: str = "A") -> list[str]:
    query = dns.message.make_query(name, rdtype)
    query.flags &= ~dns.flags.RD
    try:
        reply = dns.query.udp(query, address, port=port, timeout=2)
    except (OSError, dns.exception.DNSException):
        return []
    return sorted(rdata.to_text() for rrset in reply.answer for rdata in rrset)


def serial(address: str, port: int, zone: str) -> int | None:
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    query.flags &= ~dns.flags.RD
    try:
        reply = dns.query.udp(query, address, port=port, timeout=1)
    except (OSError, dns.exception.DNSException):
        return None
    if reply.rcode() != dns.rcode.NOERROR or not reply.flags & dns.flags.AA or not reply.answer:
        return None
    return int(reply.answer[0][0].serial)


class Presence:
    """A cheap, repeatable check that one name has an A record at one server: the query is
    built once and the answer read from the header, so a tight polling loop costs ~50 µs per
    look and does not crowd out the servers it measures."""

    def __init__(self, address: str, port: int, name: str) -> None:
        query = dns.message.make_query(name, "A")
        query.flags = 0
        self.wire = query.to_wire()
        self.target = (address, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(1)

    def __call__(self) -> bool:
        try:
            self.sock.sendto(self.wire, self.target)
            reply = self.sock.recv(4096)
        except OSError:
            return False
        return int.from_bytes(reply[6:8], "big") > 0  # ANCOUNT

    def close(self) -> None:
        self.sock.close()
