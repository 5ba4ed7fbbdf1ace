"""Agent configuration from environment variables, validated at start.

Every variable is listed in ENVIRONMENT (name, meaning, default) and in the
README. An invalid value stops the agent with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bind_ha.clients import Client, ClientError, parse_clients
from bind_ha.zonemodel import DEFAULT_LIMITS, ZoneError, ZoneLimits, normalize_name

T = TypeVar("T")

# name -> (meaning, default or None when required)
ENVIRONMENT: dict[str, tuple[str, str | None]] = {
    "POD_NAME": ("this pod's name (downward API)", None),
    "POD_UID": ("this pod's UID (downward API); with POD_NAME it is the election identity", None),
    "POD_NAMESPACE": ("namespace of the pod, the Lease and the Events (downward API)", None),
    "POD_IP": ("this pod's IP, the address peers transfer from and notify (downward API)", None),
    "BIND_HA_LEASE_NAME": ("name of the coordination.k8s.io/v1 Lease used for the election", None),
    "BIND_HA_PEER_SELECTOR": ("label selector matching every pod of this release", None),
    "BIND_HA_LABEL_PREFIX": ("prefix of the role label and status annotation", "bind-ha.io"),
    "BIND_HA_LEASE_DURATION": ("seconds a follower waits after the last renewal it saw", "10"),
    "BIND_HA_RENEW_DEADLINE": ("seconds a leader may go without renewing before it fences itself", "6"),
    "BIND_HA_RETRY_PERIOD": ("seconds between election attempts (jittered up to +20%)", "2"),
    "BIND_HA_DNS_PORT": ("port named answers DNS on, in this pod and its peers", "5353"),
    "BIND_HA_LISTEN_ADDRESS": ("address named listens on ('any' for every address)", "any"),
    "BIND_HA_LOCAL_DNS_ADDRESS": ("address the agent and probes use to query their own named", "127.0.0.1"),
    "BIND_HA_CONTROL_ADDRESS": (
        "address of named's rndc control channel and statistics channel",
        "127.0.0.1",
    ),
    # Unprivileged ports: named runs as a non-root user without capabilities, and runtimes
    # that keep net.ipv4.ip_unprivileged_port_start=1024 would refuse 953 (rndc's default).
    "BIND_HA_CONTROL_PORT": ("port of the rndc control channel (unprivileged)", "8953"),
    "BIND_HA_STATS_PORT": ("port of named's statistics channel (for bind_exporter)", "8053"),
    "BIND_HA_HEALTH_ADDRESS": (
        "address the agent serves /healthz, /readyz and /metrics on, and named's supervisor its probes",
        "0.0.0.0",
    ),
    "BIND_HA_HEALTH_PORT": ("port of the agent's /healthz, /readyz and /metrics", "8080"),
    "BIND_HA_PROBE_PORT": (
        "port of the named container's /readyz, /livez and /zones, served by its supervisor",
        "8081",
    ),
    "BIND_HA_RUN_DIR": (
        "shared runtime directory: named.conf, rndc key, role file, fence mark",
        "/var/run/bind-ha",
    ),
    "BIND_HA_DATA_DIR": (
        "zone data directory (a PersistentVolume when persistence is on)",
        "/var/lib/bind-ha",
    ),
    "BIND_HA_ZONES_FILE": (
        "YAML list of zones rendered from the chart's values",
        "/etc/bind-ha/zones/zones.yaml",
    ),
    "BIND_HA_ZONES_DIR": ("optional directory of NAME.zone files (existing ConfigMap or volume)", ""),
    "BIND_HA_ZONES_DIR_TYPE": ("type of the zones in BIND_HA_ZONES_DIR: static or dynamic", "static"),
    "BIND_HA_TSIG_DIR": (
        "directory holding the TSIG secrets transfer-secret and update-secret",
        "/etc/bind-ha/tsig",
    ),
    "BIND_HA_TSIG_ALGORITHM": ("TSIG algorithm of both keys", "hmac-sha256"),
    "BIND_HA_TRANSFER_KEY_NAME": ("TSIG key name for transfers and NOTIFY between pods", "bind-ha-transfer"),
    "BIND_HA_UPDATE_KEY_NAME": (
        "TSIG key name clients sign RFC 2136 updates (and AXFR) with",
        "bind-ha-update",
    ),
    "BIND_HA_SERIAL_MARGIN": ("how far a new primary lifts dynamic serials above any published", "1000"),
    "BIND_HA_TSIG_CLIENTS": (
        "JSON list of client keys and their update grants (the chart's tsig.clients)",
        "",
    ),
    "BIND_HA_UPDATE_KEY_TRANSFERS": ("zones the update key may AXFR: none, dynamic or all", "dynamic"),
    "BIND_HA_UPDATE_FORWARDING": ("secondaries forward signed updates to the primary: true or false", "true"),
    "BIND_HA_RRL_RESPONSES_PER_SECOND": ("response rate limit per client network (0: off)", "0"),
    "BIND_HA_RRL_WINDOW": ("seconds over which the rate limit averages", "15"),
    "BIND_HA_RRL_SLIP": ("every Nth limited UDP answer is sent truncated (0: none)", "2"),
    "BIND_HA_RRL_EXEMPT": ("comma-separated client networks the rate limit spares", "127.0.0.0/8,::1/128"),
    "BIND_HA_ZONE_MAX_BYTES": ("largest zone source, in bytes", "16777216"),
    "BIND_HA_ZONE_MAX_RECORDS": ("most lines plus $GENERATE names in one zone source", "250000"),
    "BIND_HA_ZONE_COMPILE_TIMEOUT": ("seconds one named-compilezone run may take", "30"),
    "BIND_HA_ZONE_COMPILE_MEMORY": ("MiB of data one named-compilezone run may use", "512"),
    "BIND_HA_TERMINATION_GRACE_PERIOD": (
        "grace period left when named gets SIGTERM: a stopping primary hands over within it",
        "30",
    ),
    "BIND_HA_KUBECONFIG": ("kubeconfig path; empty means in-cluster service-account credentials", ""),
    "BIND_HA_LOG_FORMAT": ("text or json", "text"),
    "BIND_HA_LOG_LEVEL": ("info, or debug for one line per round", "info"),
}

# Kubernetes names: a DNS label (namespaces) and a DNS subdomain (pods, Leases, label prefixes).
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_PREFIX = DNS_SUBDOMAIN
POD_UID = re.compile(r"[A-Za-z0-9-]{1,64}")
# k=v,k=v with label keys (optionally prefixed) and values: what the chart renders
SELECTOR = re.compile(
    r"([a-z0-9.-]{1,253}/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?=[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224")
RNDC_KEY_NAME = "bind-ha-rndc"  # keys.py's pod-local key; no TSIG key may share its name
MAX_SECONDS = 2**31 - 1  # the Lease's leaseDurationSeconds is an int32


class SettingsError(ValueError):
    """An environment variable is missing or invalid; the message names it."""


# Seconds from a passed renew deadline until every dynamic zone refuses updates: the named
# supervisor looks every 0.25 s and one `rndc freeze` of every zone takes tens of milliseconds
# (make bench: 0.15 s median from the deadline to all of 100 zones refusing, the 0.25 s
# interval included); the rest is room for a loaded node.
FENCE_LATENCY = 0.5
# Of the termination grace period, what a stopping primary keeps for itself after waiting for
# a peer to catch up: writing the Lease (a request timeout at most) and stopping named.
HANDOVER_RESERVE = 5.0


@dataclass(frozen=True)
class Timing:
    """client-go's three durations, in seconds."""

    lease_duration: float
    renew_deadline: float
    retry_period: float

    @property
    def request_timeout(self) -> float:
        """Every API call must finish in half the renew deadline."""
        return self.renew_deadline / 2


@dataclass(frozen=True)
class RateLimit:
    """named's response rate limiting (rate-limit { ... }), per client network."""

    responses_per_second: int
    window: int
    slip: int
    exempt: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    pod_name: str
    pod_uid: str
    namespace: str
    pod_ip: str
    lease_name: str
    peer_selector: str
    label_prefix: str
    timing: Timing
    dns_port: int
    listen_address: str
    local_dns_address: str
    control_address: str
    control_port: int
    stats_port: int
    health_address: str
    health_port: int
    probe_port: int
    run_dir: Path
    data_dir: Path
    zones_file: Path
    zones_dir: Path | None
    zones_dir_type: str
    tsig_dir: Path
    tsig_algorithm: str
    transfer_key_name: str
    update_key_name: str
    serial_margin: int
    termination_grace_period: float
    kubeconfig: str
    log_format: str
    log_level: str
    tsig_clients: tuple[Client, ...] = ()
    update_key_transfers: str = "dynamic"
    update_forwarding: bool = True
    rrl: RateLimit | None = None
    zone_limits: ZoneLimits = DEFAULT_LIMITS

    @property
    def identity(self) -> str:
        """A restarted container keeps it; a recreated pod does not."""
        return f"{self.pod_name}/{self.pod_uid}"

    @property
    def role_label(self) -> str:
        return f"{self.label_prefix}/role"

    @property
    def status_annotation(self) -> str:
        return f"{self.label_prefix}/status"

    @property
    def heartbeat_annotation(self) -> str:
        return f"{self.label_prefix}/heartbeat"

    @property
    def handover_wait(self) -> float:
        """How long a stopping primary may wait for a peer to catch up: the grace period less
        what it needs afterwards (at least one second)."""
        return max(1.0, self.termination_grace_period - HANDOVER_RESERVE)


class _Reader:
    """Reads one variable at a time and turns bad values into SettingsError."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str:
        _meaning, default = ENVIRONMENT[name]
        value = self.env.get(name, "").strip()
        if value and not value.isascii():
            raise SettingsError(f"{name}={value[:40]!r} must be ASCII")
        if value:
            return value
        if default is None:
            raise SettingsError(f"{name} is required ({ENVIRONMENT[name][0]})")
        return default

    def matching(self, name: str, pattern: re.Pattern[str], expected: str, max_length: int = 253) -> str:
        value = self.text(name)
        if len(value) > max_length or not pattern.fullmatch(value):
            raise SettingsError(f"{name}={value[:80]!r} is not {expected}")
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        raw = self.text(name)
        if not re.fullmatch(r"[0-9]{1,10}", raw) or not low <= int(raw) <= high:
            raise SettingsError(f"{name}={raw[:40]!r} must be an integer from {low} to {high}")
        return int(raw)

    def key_name(self, name: str) -> str:
        try:
            return normalize_name(self.text(name), name)
        except ZoneError:
            raise SettingsError(f"{name}={self.text(name)[:80]!r} is not a domain name") from None

    def parsed(self, name: str, parse: Callable[[str], T], expected: str) -> T:
        raw = self.text(name)
        try:
            return parse(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not {expected}") from None

    def seconds(self, name: str) -> float:
        value = self.parsed(name, float, "a number of seconds")
        if not math.isfinite(value) or not 0 < value <= MAX_SECONDS:
            raise SettingsError(f"{name}={value:g} must be greater than 0 and at most {MAX_SECONDS}")
        return value

    def port(self, name: str) -> int:
        raw = self.text(name)
        if not re.fullmatch(r"[0-9]{1,5}", raw) or not 0 < int(raw) < 65536:
            raise SettingsError(f"{name}={raw[:40]} is not a port number (1-65535)")
        return int(raw)

    def address(self, name: str, *, allow_any: bool = False) -> str:
        raw = self.text(name)
        if allow_any and raw == "any":
            return raw
        return self.parsed(name, lambda text: str(ipaddress.ip_address(text)), "an IP address")

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.text(name)
        if value not in choices:
            raise SettingsError(f"{name}={value!r} must be one of {', '.join(choices)}")
        return value


def validate_timing(timing: Timing) -> None:
    """client-go's rules, leaseDuration > renewDeadline > 1.2 x retryPeriod, and one of ours.

    A leader stops taking writes at most renewDeadline + FENCE_LATENCY after the *start* of
    its last successful renewal; a follower takes over leaseDuration after its read of that
    renewal *returned*. That alone needs leaseDuration - renewDeadline > FENCE_LATENCY. We
    also cover one request timeout (renewDeadline / 2): a follower stamping its observation
    before its read (as agents before this rule did, e.g. during a rolling upgrade) could be
    early by that much.
    """
    if not timing.lease_duration > timing.renew_deadline:
        raise SettingsError(
            f"BIND_HA_LEASE_DURATION ({timing.lease_duration:g}) must be greater than "
            f"BIND_HA_RENEW_DEADLINE ({timing.renew_deadline:g})"
        )
    margin = timing.lease_duration - timing.renew_deadline
    needed = timing.request_timeout + FENCE_LATENCY
    if not margin > needed:
        raise SettingsError(
            f"BIND_HA_LEASE_DURATION ({timing.lease_duration:g}) - BIND_HA_RENEW_DEADLINE "
            f"({timing.renew_deadline:g}) = {margin:g}s must be greater than the longest API request "
            f"(BIND_HA_RENEW_DEADLINE / 2 = {timing.request_timeout:g}s) plus the fence latency "
            f"({FENCE_LATENCY:g}s) = {needed:g}s: shorten the renew deadline or lengthen the lease"
        )
    if not timing.renew_deadline > 1.2 * timing.retry_period:
        raise SettingsError(
            f"BIND_HA_RENEW_DEADLINE ({timing.renew_deadline:g}) must be greater than 1.2 x "
            f"BIND_HA_RETRY_PERIOD ({timing.retry_period:g})"
        )


def load(env: Mapping[str, str]) -> Settings:
    """Settings from env, or SettingsError naming the first bad variable."""
    read = _Reader(env)
    timing = Timing(
        lease_duration=read.seconds("BIND_HA_LEASE_DURATION"),
        renew_deadline=read.seconds("BIND_HA_RENEW_DEADLINE"),
        retry_period=read.seconds("BIND_HA_RETRY_PERIOD"),
    )
    validate_timing(timing)
    prefix = read.text("BIND_HA_LABEL_PREFIX")
    if len(prefix) > 253 or not LABEL_PREFIX.fullmatch(prefix):
        raise SettingsError(
            f"BIND_HA_LABEL_PREFIX={prefix!r} is not a DNS subdomain usable as a label prefix"
        )
    raw_margin = read.text("BIND_HA_SERIAL_MARGIN")
    if not re.fullmatch(r"[0-9]{1,10}", raw_margin) or not 0 < int(raw_margin) < 2**30:
        raise SettingsError(f"BIND_HA_SERIAL_MARGIN={raw_margin[:40]} must be between 1 and 2^30")
    margin = int(raw_margin)
    zones_dir = read.text("BIND_HA_ZONES_DIR")
    transfer_key, update_key, clients = _tsig_names(read)
    grace = read.parsed("BIND_HA_TERMINATION_GRACE_PERIOD", float, "a number of seconds")
    if not 0 <= grace < 2**31:
        raise SettingsError(f"BIND_HA_TERMINATION_GRACE_PERIOD={grace:g} must be between 0 and 2^31 seconds")
    return Settings(
        pod_name=read.matching("POD_NAME", DNS_SUBDOMAIN, "a pod name (DNS subdomain)"),
        pod_uid=read.matching("POD_UID", POD_UID, "a pod UID"),
        namespace=read.matching("POD_NAMESPACE", DNS_LABEL, "a namespace name (DNS label)", 63),
        pod_ip=read.address("POD_IP"),
        lease_name=read.matching("BIND_HA_LEASE_NAME", DNS_SUBDOMAIN, "a Lease name (DNS subdomain)"),
        peer_selector=_selector(read),
        label_prefix=prefix,
        timing=timing,
        dns_port=read.port("BIND_HA_DNS_PORT"),
        listen_address=read.address("BIND_HA_LISTEN_ADDRESS", allow_any=True),
        local_dns_address=read.address("BIND_HA_LOCAL_DNS_ADDRESS"),
        control_address=read.address("BIND_HA_CONTROL_ADDRESS"),
        control_port=read.port("BIND_HA_CONTROL_PORT"),
        stats_port=read.port("BIND_HA_STATS_PORT"),
        health_address=read.address("BIND_HA_HEALTH_ADDRESS"),
        health_port=read.port("BIND_HA_HEALTH_PORT"),
        probe_port=read.port("BIND_HA_PROBE_PORT"),
        run_dir=Path(read.text("BIND_HA_RUN_DIR")),
        data_dir=Path(read.text("BIND_HA_DATA_DIR")),
        zones_file=Path(read.text("BIND_HA_ZONES_FILE")),
        zones_dir=Path(zones_dir) if zones_dir else None,
        zones_dir_type=read.choice("BIND_HA_ZONES_DIR_TYPE", ("static", "dynamic")),
        tsig_dir=Path(read.text("BIND_HA_TSIG_DIR")),
        tsig_algorithm=read.choice("BIND_HA_TSIG_ALGORITHM", TSIG_ALGORITHMS),
        transfer_key_name=transfer_key,
        update_key_name=update_key,
        serial_margin=margin,
        termination_grace_period=grace,
        kubeconfig=read.text("BIND_HA_KUBECONFIG"),
        log_format=read.choice("BIND_HA_LOG_FORMAT", ("text", "json")),
        log_level=read.choice("BIND_HA_LOG_LEVEL", ("info", "debug")),
        tsig_clients=clients,
        update_key_transfers=read.choice("BIND_HA_UPDATE_KEY_TRANSFERS", ("none", "dynamic", "all")),
        update_forwarding=read.choice("BIND_HA_UPDATE_FORWARDING", ("true", "false")) == "true",
        rrl=_rate_limit(read),
        zone_limits=_zone_limits(read),
    )


def _selector(read: _Reader) -> str:
    value = read.text("BIND_HA_PEER_SELECTOR")
    if len(value) > 1024 or not all(SELECTOR.fullmatch(pair) for pair in value.split(",")):
        raise SettingsError(f"BIND_HA_PEER_SELECTOR={value[:80]!r} is not a k=v,k=v label selector")
    return value


def _tsig_names(read: _Reader) -> tuple[str, str, tuple[Client, ...]]:
    """The transfer and update key names and the client keys: domain names, all distinct
    (case and a trailing dot aside), none the pod-local rndc key's."""
    transfer = read.key_name("BIND_HA_TRANSFER_KEY_NAME")
    update = read.key_name("BIND_HA_UPDATE_KEY_NAME")
    try:
        clients = parse_clients(read.env.get("BIND_HA_TSIG_CLIENTS", ""))
    except ClientError as error:
        raise SettingsError(f"BIND_HA_TSIG_CLIENTS: {error}") from None
    taken = {RNDC_KEY_NAME: "the pod-local rndc key", transfer: "BIND_HA_TRANSFER_KEY_NAME"}
    if transfer == RNDC_KEY_NAME:
        raise SettingsError(f"BIND_HA_TRANSFER_KEY_NAME={transfer!r} is the name of the pod-local rndc key")
    if update in taken:
        raise SettingsError(f"BIND_HA_UPDATE_KEY_NAME={update!r} is already the name of {taken[update]}")
    taken[update] = "BIND_HA_UPDATE_KEY_NAME"
    for index, client in enumerate(clients):
        if client.name in taken:
            raise SettingsError(
                f"BIND_HA_TSIG_CLIENTS: clients[{index}].name {client.name!r} is already the name of "
                f"{taken[client.name]}"
            )
    return transfer, update, clients


def _rate_limit(read: _Reader) -> RateLimit | None:
    rate = read.integer("BIND_HA_RRL_RESPONSES_PER_SECOND", 0, 1_000_000)
    exempt = []
    for item in read.text("BIND_HA_RRL_EXEMPT").split(","):
        try:
            exempt.append(str(ipaddress.ip_network(item.strip(), strict=False)))
        except ValueError:
            raise SettingsError(f"BIND_HA_RRL_EXEMPT: {item.strip()[:60]!r} is not a network") from None
    limit = RateLimit(
        responses_per_second=rate,
        window=read.integer("BIND_HA_RRL_WINDOW", 1, 3600),
        slip=read.integer("BIND_HA_RRL_SLIP", 0, 10),
        exempt=tuple(exempt),
    )
    return limit if rate else None


def _zone_limits(read: _Reader) -> ZoneLimits:
    timeout = read.seconds("BIND_HA_ZONE_COMPILE_TIMEOUT")
    if timeout > 3600:
        raise SettingsError(f"BIND_HA_ZONE_COMPILE_TIMEOUT={timeout:g} must be at most 3600")
    return ZoneLimits(
        max_bytes=read.integer("BIND_HA_ZONE_MAX_BYTES", 1024, 1 << 30),
        max_records=read.integer("BIND_HA_ZONE_MAX_RECORDS", 10, 100_000_000),
        compile_seconds=timeout,
        compile_memory=read.integer("BIND_HA_ZONE_COMPILE_MEMORY", 32, 1 << 20) * 2**20,
    )
