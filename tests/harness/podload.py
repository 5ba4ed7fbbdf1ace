"""Client load run INSIDE a pod of the cluster (the chart's image: Python 3 and dnspython).

Shipped whole to a client pod (`python3 -c TEXT CONFIG`, tests/harness/release.py's
ClientPod.load), it imports nothing from this repository. Two modes, chosen by the JSON
CONFIG's "mode":

- "load": queries through the DNS Service (UDP, every tenth over TCP) at `qps`, each
  lookup retried like a stub resolver (`tries` attempts of `query_timeout` s), and signed
  updates through the primary Service at `ups`, each adding a unique TXT record
  TAG-SEQ.ZONE. It prints `started` once both streams run, and when a line arrives on
  stdin (or stdin closes; or after `max_seconds`) one JSON summary: queries sent, failed
  lookups and failed attempts with their wall-clock times and reasons, the names of the
  acknowledged updates with their times, failed updates, and the write gaps (the longest
  spans between two acknowledged updates).
- "names": AXFR of `zone` (TSIG-signed) from each of `servers` ("ip:port"); prints
  {server: [owner names starting with `prefix`]}, or {server: "error ..."}.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import dns.xfr
import dns.zone

KEEP_FAILURES = 300  # failures listed one by one in the summary (all are counted)


def keyring(config: dict) -> tuple[dict, str]:
    name = config["key_name"]
    return dns.tsigkeyring.from_text({name: (config["key_algorithm"], config["key_secret"])}), name


class Queries:
    """Lookups at a steady rate from a few threads; a lookup fails when all its tries fail."""

    def __init__(self, config: dict, halt: threading.Event) -> None:
        self.config, self.halt = config, halt
        self.lock = threading.Lock()
        self.sent = self.ok = self.failed = self.attempt_failures = self.tcp = 0
        self.failures: list[dict] = []
        self.attempt_failure_list: list[dict] = []

    def run(self, index: int, threads: int) -> None:
        interval = threads / self.config["qps"]
        names = self.config["queries"]
        next_at = time.monotonic() + index * interval / threads
        count = 0
        while not self.halt.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                self.halt.wait(delay)
            next_at = max(next_at + interval, time.monotonic() - interval)
            check = names[count % len(names)]
            tcp = (count * threads + index) % 10 == 0
            count += 1
            self.lookup(check, tcp)

    def lookup(self, check: dict, tcp: bool) -> None:
        query = dns.message.make_query(check["name"], check["type"])
        query.flags &= ~dns.flags.RD
        reason = ""
        for _attempt in range(self.config["tries"]):
            started = time.time()
            reason = self.ask(query, check, tcp)
            if not reason:
                break
            with self.lock:
                self.attempt_failures += 1
                if len(self.attempt_failure_list) < KEEP_FAILURES:
                    self.attempt_failure_list.append({"t": started, "reason": reason, "tcp": tcp})
        with self.lock:
            self.sent += 1
            self.tcp += tcp
            if reason:
                self.failed += 1
                if len(self.failures) < KEEP_FAILURES:
                    self.failures.append({"t": time.time(), "reason": reason, "tcp": tcp})
            else:
                self.ok += 1

    def ask(self, query: dns.message.Message, check: dict, tcp: bool) -> str:
        """'' when the answer is authoritative and as expected, else why not."""
        server, port, timeout = (
            self.config["dns_server"],
            self.config["dns_port"],
            self.config["query_timeout"],
        )
        try:
            if tcp:
                reply = dns.query.tcp(query, server, port=port, timeout=timeout)
            else:
                reply = dns.query.udp(query, server, port=port, timeout=timeout, ignore_unexpected=True)
        except dns.exception.Timeout:
            return "timeout"
        except (OSError, dns.exception.DNSException) as error:
            return type(error).__name__
        if reply.rcode() != dns.rcode.NOERROR:
            return dns.rcode.to_text(reply.rcode())
        if not reply.flags & dns.flags.AA:
            return "not authoritative"
        answers = sorted(rdata.to_text() for rrset in reply.answer for rdata in rrset)
        if check.get("expect") is not None and answers != sorted(check["expect"]):
            return f"answer {answers}"
        return ""

    def summary(self) -> dict:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "failed": self.failed,
            "tcp": self.tcp,
            "attempt_failures": self.attempt_failures,
            "failures": self.failures,
            "attempt_failure_list": self.attempt_failure_list,
        }


class Updates:
    """One signed update (a new TXT name) every 1/ups seconds, one try each."""

    def __init__(self, config: dict, halt: threading.Event) -> None:
        self.config, self.halt = config, halt
        self.keyring, self.key_name = keyring(config)
        self.sent = 0
        self.acknowledged: list[list] = []  # [name, wall-clock time of the answer]
        self.failures: list[dict] = []
        self.failed = 0
        self.sent_at: list[float] = []

    def run(self) -> None:
        interval = 1 / self.config["ups"]
        next_at = time.monotonic()
        while not self.halt.is_set():
            delay = next_at - time.monotonic()
            if delay > 0:
                self.halt.wait(delay)
            next_at = max(next_at + interval, time.monotonic() - interval)
            self.sent += 1
            self.send(f"{self.config['tag']}-{self.sent}")

    def send(self, label: str) -> None:
        zone = self.config["zone"]
        message = dns.update.UpdateMessage(zone, keyring=self.keyring, keyname=self.key_name)
        message.add(label, 60, "TXT", f'"{label}"')
        started = time.time()
        try:
            reply = dns.query.udp(
                message,
                self.config["update_server"],
                port=self.config["update_port"],
                timeout=self.config["update_timeout"],
                ignore_unexpected=True,
            )
            reason = "" if reply.rcode() == dns.rcode.NOERROR else dns.rcode.to_text(reply.rcode())
        except dns.exception.Timeout:
            reason = "timeout"
        except (OSError, dns.exception.DNSException) as error:
            reason = type(error).__name__
        if reason:
            self.failed += 1
            if len(self.failures) < KEEP_FAILURES:
                self.failures.append({"t": started, "reason": reason, "name": label})
        else:
            self.acknowledged.append([label, time.time()])

    def gaps(self, started: float, stopped: float, longest: int = 5) -> list[dict]:
        """The longest spans with no acknowledged update, and the failures inside each."""
        times = [started, *(at for _name, at in self.acknowledged), stopped]
        spans = sorted(
            ({"from": a, "to": b, "seconds": b - a} for a, b in itertools.pairwise(times)),
            key=lambda span: span["seconds"],
            reverse=True,
        )[:longest]
        for span in spans:
            span["failures"] = sum(1 for f in self.failures if span["from"] <= f["t"] <= span["to"])
        return spans

    def summary(self, started: float, stopped: float) -> dict:
        return {
            "sent": self.sent,
            "acknowledged": self.acknowledged,
            "failed": self.failed,
            "failures": self.failures,
            "gaps": self.gaps(started, stopped),
        }


def load(config: dict) -> dict:
    halt = threading.Event()
    queries, updates = Queries(config, halt), Updates(config, halt)
    threads = [
        threading.Thread(target=queries.run, args=(index, config["query_threads"]), daemon=True)
        for index in range(config["query_threads"])
    ]
    if config["ups"] > 0:
        threads.append(threading.Thread(target=updates.run, daemon=True))
    started = time.time()
    for thread in threads:
        thread.start()
    print("started", flush=True)
    waiter = threading.Thread(target=sys.stdin.readline, daemon=True)  # a line or EOF: stop
    waiter.start()
    waiter.join(config["max_seconds"])
    halt.set()
    for thread in threads:
        thread.join(30)
    stopped = time.time()
    return {
        "started": started,
        "stopped": stopped,
        "seconds": stopped - started,
        "queries": queries.summary(),
        "updates": updates.summary(started, stopped),
    }


def names(config: dict) -> dict:
    ring, key_name = keyring(config)
    found: dict[str, object] = {}
    for server in config["servers"]:
        address, port = server.rsplit(":", 1)
        try:
            zone = dns.zone.from_xfr(
                dns.query.xfr(
                    address,
                    config["zone"],
                    port=int(port),
                    keyring=ring,
                    keyname=key_name,
                    timeout=10,
                    lifetime=60,
                )
            )
        except (OSError, dns.exception.DNSException) as error:
            found[server] = f"error {type(error).__name__}: {error}"
            continue
        found[server] = sorted(str(name) for name in zone.nodes if str(name).startswith(config["prefix"]))
    return found


DEFAULTS = {
    "dns_port": 53,
    "update_port": 53,
    "qps": 120,
    "ups": 20,
    "query_threads": 4,
    "tries": 3,
    "query_timeout": 0.7,
    "update_timeout": 1.0,
    "key_algorithm": "hmac-sha256",
    "max_seconds": 600,
}


def main(argv: list[str]) -> int:
    config = {**DEFAULTS, **json.loads(argv[1])}
    mode = config.get("mode", "load")
    result = load(config) if mode == "load" else names(config)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
