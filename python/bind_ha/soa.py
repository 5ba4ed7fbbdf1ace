"""One SOA query without recursion: what probes, the agent and the fence all ask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsigkeyring

if TYPE_CHECKING:
    from bind_ha.keys import TsigKey


@dataclass(frozen=True)
class SoaAnswer:
    problem: str | None  # None when the zone answered authoritatively
    serial: int | None = None
    answered: bool = True  # False when the server did not answer at all


def ask(zone: str, address: str, port: int, timeout: float = 1.0, key: TsigKey | None = None) -> SoaAnswer:
    """Ask for zone's SOA without recursion; signed with key when given (a named view may
    answer only signed questions)."""
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    query.flags &= ~dns.flags.RD
    if key is not None:
        keyring = dns.tsigkeyring.from_text({key.name: (key.algorithm, key.secret)})
        query.use_tsig(keyring, keyname=dns.name.from_text(key.name))
    try:
        reply = dns.query.udp(query, address, port=port, timeout=timeout)
    except (OSError, dns.exception.DNSException) as error:
        return SoaAnswer(f"{zone}: no answer ({type(error).__name__})", answered=False)
    if reply.rcode() != dns.rcode.NOERROR:
        return SoaAnswer(f"{zone}: {dns.rcode.to_text(reply.rcode())}")
    if not reply.flags & dns.flags.AA:
        return SoaAnswer(f"{zone}: answer is not authoritative")
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.SOA:
            return SoaAnswer(None, int(rrset[0].serial))
    return SoaAnswer(f"{zone}: no SOA in the answer")
