"""The zones the integration tests, the demo and the bench serve."""

from __future__ import annotations

STATIC_ZONE: dict[str, object] = {
    "name": "example.test",
    "type": "static",
    "ttl": 300,
    "soa": {"mname": "ns1.example.test.", "rname": "hostmaster.example.test."},
    "nameservers": ["ns1.example.test."],
    "records": "ns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n",
}
DYNAMIC_ZONE: dict[str, object] = {
    "name": "dyn.test",
    "type": "dynamic",
    "ttl": 60,
    "nameservers": ["ns1.example.test."],
}
REVERSE_ZONE: dict[str, object] = {
    "name": "2.0.192.in-addr.arpa",
    "type": "static",
    "nameservers": ["ns1.example.test."],
    "records": "80 IN PTR www.example.test.\n",
}
EXAMPLE_ZONES: list[dict[str, object]] = [STATIC_ZONE, DYNAMIC_ZONE]


def big_zone(name: str, records: int, zone_type: str = "dynamic") -> dict[str, object]:
    """A zone of `records` A records h0..hN (plus its name server's)."""
    lines = "\n".join(
        f"h{index} IN A 10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}" for index in range(records)
    )
    return {
        "name": name,
        "type": zone_type,
        "ttl": 300,
        "nameservers": [f"ns1.{name}."],
        "records": "ns1 IN A 192.0.2.1\n" + lines + "\n",
    }
