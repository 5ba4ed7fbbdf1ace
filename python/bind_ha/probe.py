"""named's readiness: every zone of the applied config answers SOA with AA."""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from bind_ha.runstate import RunDir


def zone_answers(zone: str, address: str, port: int, timeout: float) -> str | None:
    """None when zone answers authoritatively, else why not."""
    query = dns.message.make_query(zone, dns.rdatatype.SOA)
    query.flags &= ~dns.flags.RD
    try:
        reply = dns.query.udp(query, address, port=port, timeout=timeout)
    except (OSError, dns.exception.DNSException) as error:
        return f"{zone}: no answer ({type(error).__name__})"
    if reply.rcode() != dns.rcode.NOERROR:
        return f"{zone}: {dns.rcode.to_text(reply.rcode())}"
    if not reply.flags & dns.flags.AA:
        return f"{zone}: answer is not authoritative"
    return None


def named_ready(run: RunDir, address: str, port: int, timeout: float = 1.0) -> list[str]:
    """Problems that make this pod unready; empty when every zone answers."""
    zones = run.zones()
    if zones is None:
        return ["named.conf not applied yet"]
    return [problem for zone in zones if (problem := zone_answers(zone.name, address, port, timeout))]
