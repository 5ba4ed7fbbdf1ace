"""The `helm test` pod's checks (hooks/helm_test.py), run against a live release.

1. The zones: every pod of the release (found through the headless Service) reports
   the zones its named applied (`/zones` on the named container's probe port). The
   test checks what the release serves, so zones from a `zonesVolume` (which the test
   pod does not mount) are checked too; every zone declared in the sources the test
   pod does mount (values, zonesConfigMap) must be among them.
2. Every zone answers SOA with the AA flag through the DNS Service, over UDP and TCP.
3. Updates through the primary Service: on every dynamic zone an unsigned update
   is REFUSED, and an update signed with the update key adds a TXT record that the
   primary then serves authoritatively; the record is deleted again. A release
   with only static zones must REFUSE a signed update with a signed answer (which
   proves the key and the path work).

Configuration comes from the environment (ENVIRONMENT below, plus the zone and
TSIG variables of settings.ENVIRONMENT). What pods report is checked like any
input: a malformed report is ignored, never trusted.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.update

from bind_ha.keys import UPDATE_SECRET_FILE, SecretError, read_secret
from bind_ha.settings import ENVIRONMENT as AGENT_ENVIRONMENT
from bind_ha.settings import TSIG_ALGORITHMS, SettingsError
from bind_ha.zonefiles import load_sources
from bind_ha.zonemodel import ZoneError

log = logging.getLogger("bind_ha.selftest")

# name -> (meaning, default or None when required); the chart's test pod sets them.
ENVIRONMENT: dict[str, tuple[str, str | None]] = {
    "BIND_HA_TEST_DNS_SERVICE": ("host name or address of the DNS Service (queries)", None),
    "BIND_HA_TEST_DNS_PORT": ("port of the DNS Service", "53"),
    "BIND_HA_TEST_PRIMARY_SERVICE": ("host name or address of the primary Service (updates)", None),
    "BIND_HA_TEST_PRIMARY_PORT": ("port of the primary Service", "53"),
    "BIND_HA_TEST_PODS": ("host name resolving to every pod of the release (the headless Service)", None),
    "BIND_HA_TEST_PROBE_PORT": ("port of the named containers' /zones", "8081"),
    "BIND_HA_TEST_TIMEOUT": ("seconds each check may retry before it fails (pods may still start)", "60"),
}
SHARED = (
    "BIND_HA_ZONES_FILE",
    "BIND_HA_ZONES_DIR",
    "BIND_HA_ZONES_DIR_TYPE",
    "BIND_HA_TSIG_DIR",
    "BIND_HA_TSIG_ALGORITHM",
    "BIND_HA_UPDATE_KEY_NAME",
)
PROBE_LABEL = "_bind-ha-selftest"
QUERY_TIMEOUT = 2.0
RETRY_INTERVAL = 1.0


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Zone:
    name: str
    dynamic: bool


@dataclass(frozen=True)
class Config:
    dns: Endpoint
    primary: Endpoint
    pods: Endpoint
    zones_file: Path
    zones_dir: Path | None
    zones_dir_type: str
    tsig_dir: Path
    tsig_algorithm: str
    update_key_name: str
    timeout: float


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, and why it failed (None: passed)."""

    what: str
    problem: str | None = None

    def line(self) -> str:
        return f"PASS {self.what}" if self.problem is None else f"FAIL {self.what}: {self.problem}"


def _env(env: Mapping[str, str], name: str) -> str:
    table = ENVIRONMENT if name in ENVIRONMENT else AGENT_ENVIRONMENT
    meaning, default = table[name]
    value = env.get(name, "").strip()
    if value:
        return value
    if default is None:
        raise SettingsError(f"{name} is required ({meaning})")
    return default


def _number(env: Mapping[str, str], name: str, parse: Callable[[str], float]) -> float:
    raw = _env(env, name)
    try:
        value = parse(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r} must be greater than 0")
    return value


def load_config(env: Mapping[str, str]) -> Config:
    """The test's configuration, or SettingsError naming the bad variable."""
    ports = {
        name: int(_number(env, name, int))
        for name in ("BIND_HA_TEST_DNS_PORT", "BIND_HA_TEST_PRIMARY_PORT", "BIND_HA_TEST_PROBE_PORT")
    }
    for name, port in ports.items():
        if port > 65535:
            raise SettingsError(f"{name}={port} is not a port number (1-65535)")
    algorithm = _env(env, "BIND_HA_TSIG_ALGORITHM")
    if algorithm not in TSIG_ALGORITHMS:
        raise SettingsError(
            f"BIND_HA_TSIG_ALGORITHM={algorithm!r} must be one of {', '.join(TSIG_ALGORITHMS)}"
        )
    zones_dir_type = _env(env, "BIND_HA_ZONES_DIR_TYPE")
    if zones_dir_type not in ("static", "dynamic"):
        raise SettingsError(f"BIND_HA_ZONES_DIR_TYPE={zones_dir_type!r} must be static or dynamic")
    zones_dir = _env(env, "BIND_HA_ZONES_DIR")
    return Config(
        dns=Endpoint(_env(env, "BIND_HA_TEST_DNS_SERVICE"), ports["BIND_HA_TEST_DNS_PORT"]),
        primary=Endpoint(_env(env, "BIND_HA_TEST_PRIMARY_SERVICE"), ports["BIND_HA_TEST_PRIMARY_PORT"]),
        pods=Endpoint(_env(env, "BIND_HA_TEST_PODS"), ports["BIND_HA_TEST_PROBE_PORT"]),
        zones_file=Path(_env(env, "BIND_HA_ZONES_FILE")),
        zones_dir=Path(zones_dir) if zones_dir else None,
        zones_dir_type=zones_dir_type,
        tsig_dir=Path(_env(env, "BIND_HA_TSIG_DIR")),
        tsig_algorithm=algorithm,
        update_key_name=_env(env, "BIND_HA_UPDATE_KEY_NAME"),
        timeout=_number(env, "BIND_HA_TEST_TIMEOUT", float),
    )


def resolve(endpoint: Endpoint) -> str:
    """The endpoint's address (a Service name through the cluster's resolver)."""
    return resolve_all(endpoint)[0]


def resolve_all(endpoint: Endpoint) -> list[str]:
    """Every address of the endpoint (a headless Service has one per pod)."""
    infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise OSError(f"{endpoint.host} has no address")
    return addresses


def parse_zones_report(text: str) -> list[Zone] | None:
    """A pod's /zones document, or None when it is malformed or no config is applied yet."""
    try:
        report = json.loads(text)
        if report.get("applied") is not True:
            return None
        zones = [Zone(canonical(entry["name"]), entry["dynamic"]) for entry in report["zones"]]
    except (ValueError, TypeError, KeyError, AttributeError, dns.exception.DNSException):
        return None
    if not all(isinstance(zone.dynamic, bool) for zone in zones):
        return None
    return zones


def zones_of(address: str, port: int) -> list[Zone] | None:
    host = f"[{address}]" if ":" in address else address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/zones", timeout=QUERY_TIMEOUT) as reply:
            return parse_zones_report(reply.read(1_000_000).decode(errors="replace"))
    except (OSError, ValueError):
        return None


@dataclass
class Tester:
    """Runs the checks against resolved addresses, retrying each until config.timeout."""

    config: Config
    keyring: dict[dns.name.Name, dns.tsig.Key]
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    @property
    def key_name(self) -> dns.name.Name:
        return dns.name.from_text(self.config.update_key_name)

    def _retry(self, attempt: Callable[[], str | None]) -> str | None:
        """attempt() returns None on success or the problem; retried until the deadline."""
        deadline = self.clock() + self.config.timeout
        while True:
            try:
                problem = attempt()
            except (OSError, dns.exception.DNSException) as error:
                problem = f"{type(error).__name__}: {error}".rstrip(": ")
            if problem is None or self.clock() >= deadline:
                return problem
            self.sleep(RETRY_INTERVAL)

    def _query(
        self, name: str, rdtype: dns.rdatatype.RdataType, endpoint: Endpoint, *, tcp: bool
    ) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        query.flags &= ~dns.flags.RD
        address = resolve(endpoint)
        if tcp:
            return dns.query.tcp(query, address, port=endpoint.port, timeout=QUERY_TIMEOUT)
        return dns.query.udp(query, address, port=endpoint.port, timeout=QUERY_TIMEOUT)

    def soa(self, zone: str, *, tcp: bool) -> Check:
        what = f"{zone} SOA via {self.config.dns} ({'TCP' if tcp else 'UDP'})"

        def attempt() -> str | None:
            reply = self._query(zone, dns.rdatatype.SOA, self.config.dns, tcp=tcp)
            if reply.rcode() != dns.rcode.NOERROR:
                return dns.rcode.to_text(reply.rcode())
            if not reply.flags & dns.flags.AA:
                return "answer is not authoritative (no AA flag)"
            if not any(rrset.rdtype == dns.rdatatype.SOA for rrset in reply.answer):
                return "no SOA record in the answer"
            return None

        return Check(what, self._retry(attempt))

    def _update(
        self, zone: str, *, signed: bool, add: str | None = None, delete: bool = False
    ) -> dns.rcode.Rcode:
        """Send one update of the probe TXT record to the primary Service; returns the rcode."""
        if signed:
            update = dns.update.UpdateMessage(
                zone, keyring=self.keyring, keyname=self.key_name, keyalgorithm=self.config.tsig_algorithm
            )
        else:
            update = dns.update.UpdateMessage(zone)
        owner = f"{PROBE_LABEL}.{zone}."
        if add is not None:
            update.add(owner, 60, dns.rdatatype.TXT, f'"{add}"')
        if delete:
            update.delete(owner, dns.rdatatype.TXT)
        address = resolve(self.config.primary)
        return dns.query.tcp(update, address, port=self.config.primary.port, timeout=QUERY_TIMEOUT).rcode()

    @staticmethod
    def _expect(expected: dns.rcode.Rcode, send: Callable[[], dns.rcode.Rcode]) -> str | None:
        rcode = send()
        if rcode != expected:
            return f"answered {dns.rcode.to_text(rcode)}, expected {dns.rcode.to_text(expected)}"
        return None

    def dynamic_update(self, zone: str) -> list[Check]:
        via = f"via {self.config.primary}"
        token = secrets.token_hex(8)
        checks = [
            Check(
                f"{zone} unsigned update refused {via}",
                self._retry(
                    lambda: self._expect(
                        dns.rcode.REFUSED, lambda: self._update(zone, signed=False, add=token)
                    )
                ),
            )
        ]
        added = Check(
            f"{zone} signed update {via}",
            self._retry(
                lambda: self._expect(dns.rcode.NOERROR, lambda: self._update(zone, signed=True, add=token))
            ),
        )
        checks.append(added)
        if added.problem is not None:
            return checks

        def visible() -> str | None:
            reply = self._query(f"{PROBE_LABEL}.{zone}.", dns.rdatatype.TXT, self.config.primary, tcp=True)
            if not reply.flags & dns.flags.AA:
                return "answer is not authoritative"
            texts = [rdata.to_text() for rrset in reply.answer for rdata in rrset]
            return None if any(token in text for text in texts) else f"record not served yet (got {texts})"

        checks.append(Check(f"{zone} updated record served {via}", self._retry(visible)))
        checks.append(
            Check(
                f"{zone} signed delete {via}",
                self._retry(
                    lambda: self._expect(
                        dns.rcode.NOERROR, lambda: self._update(zone, signed=True, delete=True)
                    )
                ),
            )
        )
        return checks

    def static_update(self, zone: str) -> Check:
        """A signed update of a static zone: REFUSED, in an answer whose signature verified."""
        return Check(
            f"{zone} (static) signed update refused with a verified signature via {self.config.primary}",
            self._retry(
                lambda: self._expect(dns.rcode.REFUSED, lambda: self._update(zone, signed=True, add="static"))
            ),
        )

    def run(self, zones: Sequence[Zone]) -> list[Check]:
        checks: list[Check] = []
        answering = []
        for zone in zones:
            pair = [self.soa(zone.name, tcp=tcp) for tcp in (False, True)]
            checks += pair
            if all(check.problem is None for check in pair):
                answering.append(zone)
        dynamic = [zone for zone in zones if zone.dynamic]
        for zone in dynamic:
            checks += self.dynamic_update(zone.name)
        if not dynamic and answering:
            checks.append(self.static_update(answering[0].name))
        return checks


def canonical(name: str) -> str:
    return str(dns.name.from_text(name).to_text(omit_final_dot=True)).lower()


def served_zones(
    config: Config,
    declared: Sequence[str],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list[Zone], Check]:
    """The zones the release's pods applied, asked again (pods may still start) until every
    declared zone is among them or config.timeout passed."""
    deadline = clock() + config.timeout
    wanted = {canonical(name) for name in declared}
    while True:
        unresolved: str | None = None
        try:
            addresses = resolve_all(config.pods)
        except OSError as error:
            addresses, unresolved = [], f"{config.pods.host}: {error}"
        answers = [zones_of(address, config.pods.port) for address in addresses]
        reports = [zones for zones in answers if zones is not None]
        served = {canonical(zone.name): zone for report in reports for zone in report}
        missing = sorted(wanted - set(served))
        problem = (
            unresolved
            or (None if reports else f"no pod behind {config.pods} reported applied zones")
            or (f"declared but served by no pod: {', '.join(missing)}" if missing else None)
        )
        if problem is None or clock() >= deadline:
            names = ", ".join(sorted(served)) or "none"
            what = f"zones served by the release ({len(reports)} pod(s) via {config.pods}): {names}"
            return [served[name] for name in sorted(served)], Check(what, problem)
        sleep(RETRY_INTERVAL)


def selftest(
    config: Config,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[Check]:
    """Every check against the release that config points at."""
    try:
        declared = [
            spec.name for spec in load_sources(config.zones_file, config.zones_dir, config.zones_dir_type)
        ]
    except ZoneError as error:
        return [Check("read the zone sources", str(error))]
    try:
        secret = read_secret(config.tsig_dir / UPDATE_SECRET_FILE)
    except SecretError as error:
        return [Check("read the update key", str(error))]
    zones, found = served_zones(config, declared, sleep=sleep, clock=clock)
    if found.problem is not None:
        return [found]
    if not zones:
        return [Check(found.what, "the release serves no zones")]
    keyring = dns.tsigkeyring.from_text({config.update_key_name: (config.tsig_algorithm, secret)})
    return [found, *Tester(config, keyring, sleep=sleep, clock=clock).run(zones)]


def main(env: Mapping[str, str] | None = None) -> int:
    """hooks/helm_test.py: print one line per check; 0 when all passed."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    try:
        config = load_config(os.environ if env is None else env)
    except SettingsError as error:
        log.error("bind-ha selftest: invalid configuration: %s", error)
        return 2
    checks = selftest(config)
    for check in checks:
        log.info("%s", check.line())
    failed = sum(check.problem is not None for check in checks)
    log.info("%d check(s), %d failed", len(checks), failed)
    return 1 if failed else 0
