"""Steady client traffic for failover tests and the bench: queries and signed updates."""

from __future__ import annotations

import itertools
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import dns.flags
import dns.message
import dns.rcode

from tests.harness import dnsclient
from tests.harness.tools import tool


@dataclass(frozen=True)
class Failure:
    at: float  # monotonic time the question was sent
    name: str
    what: str  # "timeout", an rcode, "not authoritative" or "no answer records"


@dataclass(eq=False)
class QueryStream(threading.Thread):
    """Asks one server a steady stream of questions over UDP, as a resolver behind a Service
    would, and records every one that was not answered authoritatively with records: a
    timeout (after `timeout`), SERVFAIL, REFUSED, no AA or an empty answer."""

    address: str
    port: int
    names: list[str]
    timeout: float = 0.25
    pause: float = 0.002
    failures: list[Failure] = field(default_factory=list)
    answered: int = 0

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, daemon=True, name=f"queries-{self.address}")
        self.halt = threading.Event()

    def run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(self.timeout)
            index = 0
            while not self.halt.is_set():
                name = self.names[index % len(self.names)]
                index += 1
                self._ask(sock, name)
                time.sleep(self.pause)

    def _ask(self, sock: socket.socket, name: str) -> None:
        query = dns.message.make_query(name, "A")
        query.flags = 0
        sent = time.monotonic()
        try:
            sock.sendto(query.to_wire(), (self.address, self.port))
            while True:  # skip a late answer to an earlier question
                reply = dns.message.from_wire(sock.recv(65535))
                if reply.id == query.id:
                    break
        except (TimeoutError, OSError):
            self.failures.append(Failure(sent, name, "timeout"))
            return
        if reply.rcode() != dns.rcode.NOERROR:
            self.failures.append(Failure(sent, name, dns.rcode.to_text(reply.rcode())))
        elif not reply.flags & dns.flags.AA:
            self.failures.append(Failure(sent, name, "not authoritative"))
        elif not reply.answer:
            self.failures.append(Failure(sent, name, "no answer records"))
        else:
            self.answered += 1

    def stop(self) -> None:
        self.halt.set()
        self.join()

    def outage(self) -> float:
        """Seconds from the first to the last failure (0 without failures)."""
        if not self.failures:
            return 0.0
        return self.failures[-1].at - self.failures[0].at

    def summary(self) -> str:
        kinds = sorted({failure.what for failure in self.failures})
        return f"{len(self.failures)} of {len(self.failures) + self.answered} failed ({', '.join(kinds)})"


@contextmanager
def querying(
    addresses: list[str], port: int, names: list[str], timeout: float = 1.0
) -> Iterator[dict[str, QueryStream]]:
    streams = {address: QueryStream(address, port, names, timeout=timeout) for address in addresses}
    for stream in streams.values():
        stream.start()
    try:
        yield streams
    finally:
        for stream in streams.values():
            stream.stop()


class Writer(threading.Thread):
    """Signed updates, one at a time, to a target chosen each time; records the acknowledged."""

    def __init__(
        self,
        targets: Callable[[], list[str]],
        port: int,
        zone: str,
        key: tuple[str, str],
        tag: str,
        pause: float = 0.005,
    ) -> None:
        super().__init__(daemon=True, name=f"writer-{tag}")
        self.targets, self.port, self.zone, self.key, self.tag, self.pause = (
            targets,
            port,
            zone,
            key,
            tag,
            pause,
        )
        self.acknowledged: list[str] = []
        self.acknowledged_at: list[float] = []  # monotonic time of each acknowledgement
        self.sent = 0
        self.halt = threading.Event()

    def run(self) -> None:
        chooser = random.Random(self.tag)
        while not self.halt.is_set():
            addresses = self.targets()
            if not addresses:
                time.sleep(0.01)
                continue
            name = f"{self.tag}{self.sent}"
            self.sent += 1
            rcode = dnsclient.update(
                chooser.choice(addresses),
                self.port,
                self.zone,
                add={name: "192.0.2.99"},
                key=self.key,
                timeout=2,
            )
            if rcode == "NOERROR":
                self.acknowledged.append(name)
                self.acknowledged_at.append(time.monotonic())
            time.sleep(self.pause)

    def stop(self) -> None:
        self.halt.set()
        self.join()

    def longest_gap(self, since: float) -> float:
        """The longest time between two acknowledgements, the later one after `since`: how
        long writes were unavailable to this client around a switch."""
        times = self.acknowledged_at
        gaps = [later - earlier for earlier, later in itertools.pairwise(times) if later > since]
        return max(gaps, default=0.0)


@contextmanager
def dropped_tcp_to(address: str, port: int) -> Iterator[None]:
    """Drop every TCP packet to address:port (zone transfers, forwarded updates) while UDP
    (SOA queries, NOTIFY) still flows. Only inside the run's own network namespace."""
    table = "bindha_test"
    nft = tool("nft")
    subprocess.run([nft, "add", "table", "inet", table], check=True)
    try:
        subprocess.run(
            [nft, "add", "chain", "inet", table, "out", "{ type filter hook output priority 0 ; }"],
            check=True,
        )
        subprocess.run(
            [
                nft,
                "add",
                "rule",
                "inet",
                table,
                "out",
                "ip",
                "daddr",
                address,
                "tcp",
                "dport",
                str(port),
                "drop",
            ],
            check=True,
        )
        yield
    finally:
        subprocess.run([nft, "delete", "table", "inet", table], check=True)
