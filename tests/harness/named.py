"""Real `named` processes on distinct loopback addresses, with TSIG and rndc keys.

Each test session takes its own 127.N.0.0/16 block (N from the PID) so a test
run never collides with `make demo` or another run on the same machine.
"""

from __future__ import annotations

import base64
import os
import pathlib
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.message
import dns.query
import dns.rdatatype
import dns.tsigkeyring

from tests.harness import processes
from tests.harness.processes import Process, StartupError
from tests.harness.tools import tool

DNS_PORT = 5353
CONTROL_PORT = 953
TSIG_ALGORITHM = "hmac-sha256"


def new_secret() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass(frozen=True)
class TsigKey:
    name: str
    secret: str
    algorithm: str = TSIG_ALGORITHM

    def clause(self) -> str:
        return f'key "{self.name}" {{ algorithm {self.algorithm}; secret "{self.secret}"; }};\n'

    def keyring(self) -> dict[dns.name.Name, dns.tsig.Key]:
        return dns.tsigkeyring.from_text({self.name: (self.algorithm, self.secret)})  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ClusterKeys:
    """The keys a set of instances share: zone transfers and dynamic updates."""

    xfr: TsigKey = field(default_factory=lambda: TsigKey("bind-ha-xfr", new_secret()))
    update: TsigKey = field(default_factory=lambda: TsigKey("bind-ha-update", new_secret()))


class NotIsolatedError(RuntimeError):
    """Addresses may only be added inside the run's own network namespace."""


def add_loopback_address(address: str) -> None:
    """named listens only on addresses configured on an interface: put address on lo.

    Allowed only inside the namespace .ci/isolated created, so the host's
    network configuration is never touched.
    """
    if os.environ.get("BIND_HA_NETNS") != "1":
        raise NotIsolatedError(
            "run through .ci/isolated (make test does): named instances need their own "
            "loopback addresses, which are only added inside a private network namespace"
        )
    shown = subprocess.run(
        ["ip", "-o", "addr", "show", "dev", "lo"], capture_output=True, text=True, check=True
    )
    if f" {address}/" not in shown.stdout:
        subprocess.run(["ip", "addr", "add", f"{address}/32", "dev", "lo"], check=True, capture_output=True)


class LoopbackAllocator:
    """Hands out 127.N.H.L addresses from this session's block, configured on lo."""

    def __init__(self, block: int | None = None) -> None:
        self.block = block if block is not None else 100 + os.getpid() % 150
        self._next = 0

    def allocate(self) -> str:
        self._next += 1
        high, low = divmod(self._next, 250)
        address = f"127.{self.block}.{high}.{low + 2}"
        add_loopback_address(address)
        return address


class NamedInstance:
    """One named, its working directory, its rndc key and its control channel."""

    def __init__(self, name: str, address: str, workdir: pathlib.Path, keys: ClusterKeys) -> None:
        self.name = name
        self.address = address
        self.port = DNS_PORT
        self.control_port = CONTROL_PORT
        self.workdir = workdir
        self.keys = keys
        self.rndc_key = TsigKey(f"rndc-{name}", new_secret())
        self.process: Process | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "rndc.conf").write_text(
            self.rndc_key.clause()
            + f'options {{ default-key "{self.rndc_key.name}"; default-server {address};'
            f" default-port {CONTROL_PORT}; default-source-address {address}; }};\n"
        )

    @property
    def conf_path(self) -> pathlib.Path:
        return self.workdir / "named.conf"

    def base_options(self) -> str:
        """The options every test config needs: where to listen and where to write."""
        return (
            f'directory "{self.workdir}";\n'
            f"listen-on port {self.port} {{ {self.address}; }};\n"
            "listen-on-v6 { none; };\n"
            f'pid-file "{self.workdir}/named.pid";\n'
            f'session-keyfile "{self.workdir}/session.key";\n'
            f'managed-keys-directory "{self.workdir}";\n'
            "recursion no;\n"
            "dnssec-validation no;\n"
        )

    def controls(self) -> str:
        return (
            self.rndc_key.clause() + f"controls {{ inet {self.address} port {self.control_port}"
            f' allow {{ {self.address}; }} keys {{ "{self.rndc_key.name}"; }}; }};\n'
        )

    def start(self, conf: str, *, timeout: float = 30.0, threads: int | None = 1) -> None:
        """Start named with conf; threads=None lets it use every CPU, as in a pod."""
        self.conf_path.write_text(conf)
        check = subprocess.run(
            [tool("named-checkconf"), str(self.conf_path)], check=False, capture_output=True, text=True
        )
        if check.returncode != 0:
            raise StartupError(f"{self.name}: named.conf invalid: {check.stdout}{check.stderr}")
        self.process = processes.start(
            f"named-{self.name}",
            [tool("named"), "-g", *(["-n", str(threads)] if threads else []), "-c", str(self.conf_path)],
            self.workdir / "named.log",
        )
        processes.wait_until(
            self.process,
            lambda: self.rndc("status").returncode == 0,
            timeout=timeout,
            what="answering rndc status",
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def rndc(self, *args: str, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tool("rndc"), "-c", str(self.workdir / "rndc.conf"), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def soa_serial(self, zone: str) -> int | None:
        """The SOA serial this instance serves authoritatively, or None."""
        query = dns.message.make_query(zone, dns.rdatatype.SOA)
        query.flags &= ~dns.flags.RD
        try:
            reply = dns.query.udp(query, self.address, port=self.port, timeout=2)
        except (TimeoutError, OSError, dns.exception.Timeout):
            return None
        if reply.rcode() != 0 or not reply.flags & dns.flags.AA or not reply.answer:
            return None
        return int(reply.answer[0][0].serial)

    def wait_for_serial(self, zone: str, serial: int, *, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.soa_serial(zone) == serial:
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: {zone} serial {self.soa_serial(zone)} never reached {serial}")


class NamedSet:
    """N instances sharing one set of TSIG keys; stop_all() runs even when a test fails."""

    def __init__(self, root: pathlib.Path, allocator: LoopbackAllocator) -> None:
        self.root = root
        self.allocator = allocator
        self.keys = ClusterKeys()
        self.instances: list[NamedInstance] = []

    def create(self, count: int) -> list[NamedInstance]:
        created = []
        for _ in range(count):
            name = f"ns{len(self.instances)}"
            instance = NamedInstance(name, self.allocator.allocate(), self.root / name, self.keys)
            self.instances.append(instance)
            created.append(instance)
        return created

    def __iter__(self) -> Iterator[NamedInstance]:
        return iter(self.instances)

    def stop_all(self) -> None:
        for instance in self.instances:
            instance.stop()
