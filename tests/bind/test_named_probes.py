"""The named container as the chart runs it: the supervisor (hooks/named.py) starting named
as UID 10001 with every capability dropped, where unprivileged ports start at 1024 (this
test's network namespace keeps the kernel's default, as containerd 1.x and CRI-O do), and
the probes it answers over HTTP."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import dns
import pytest
import yaml

from bind_ha import settings as settings_module
from bind_ha.bind import Bind
from bind_ha.init import initialize
from bind_ha.keys import rndc_conf_path
from tests.harness import processes
from tests.harness.named import LoopbackAllocator, new_secret
from tests.harness.processes import Process
from tests.harness.tools import REPO, path_with_tools

UID = 10001
ZONE = "static.test"
UNPRIVILEGED = ["setpriv", f"--reuid={UID}", f"--regid={UID}", "--clear-groups"]
NO_CAPABILITIES = ["--inh-caps=-all", "--bounding-set=-all"]


@dataclass
class Container:
    env: dict[str, str]
    supervisor: Process
    address: str
    probe_port: int

    def get(self, path: str) -> tuple[int, str]:
        url = f"http://{self.address}:{self.probe_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def named_pid(self) -> int:
        pid = self.supervisor.pid
        children = pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])


def cpu_seconds(pid: int) -> float:
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(what: str, condition: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def unprivileged_code(base: pathlib.Path) -> tuple[str, pathlib.Path]:
    """UID 10001 may not be able to enter the checkout (a clone in a private directory): it
    runs a copy of the supervisor's code and of its one third-party package (dnspython), with
    the interpreter the venv points at."""
    code = base / "code"
    shutil.copytree(REPO / "python" / "bind_ha", code / "bind_ha")
    shutil.copytree(pathlib.Path(dns.__file__).parent, code / "dns")
    shutil.copy(REPO / "hooks" / "named.py", code / "named.py")
    return os.path.realpath(sys.executable), code


@pytest.fixture
def named_container(loopback: LoopbackAllocator) -> Iterator[Container]:
    # Under /tmp with open modes: UID 10001 cannot enter pytest's private tmp_path.
    base = pathlib.Path(tempfile.mkdtemp(prefix="bind-ha-unprivileged-"))
    address = loopback.allocate()
    (base / "tsig").mkdir()
    for name in ("transfer-secret", "update-secret"):
        (base / "tsig" / name).write_text(new_secret() + "\n")
    zone = {"name": ZONE, "nameservers": [f"ns1.{ZONE}."], "records": "ns1 IN A 192.0.2.53\n"}
    (base / "zones.yaml").write_text(yaml.safe_dump([zone]))
    interpreter, code = unprivileged_code(base)
    env = {
        "PATH": path_with_tools(),
        "PYTHONPATH": str(code),
        "POD_NAME": "dns-0",
        "POD_UID": "uid-0",
        "POD_NAMESPACE": "dns",
        "POD_IP": address,
        "BIND_HA_LEASE_NAME": "dns-bind-ha-leader",
        "BIND_HA_PEER_SELECTOR": "app=dns",
        "BIND_HA_LISTEN_ADDRESS": address,
        "BIND_HA_LOCAL_DNS_ADDRESS": address,
        "BIND_HA_CONTROL_ADDRESS": address,
        "BIND_HA_HEALTH_ADDRESS": address,
        "BIND_HA_RUN_DIR": str(base / "run"),
        "BIND_HA_DATA_DIR": str(base / "data"),
        "BIND_HA_ZONES_FILE": str(base / "zones.yaml"),
        "BIND_HA_TSIG_DIR": str(base / "tsig"),
    }
    loaded = settings_module.load(env)
    assert loaded.control_port >= 1024 and loaded.stats_port >= 1024, "the defaults must be unprivileged"
    initialize(loaded, None)  # the init container: keys and the first named.conf
    for path in [base, *base.rglob("*")]:
        os.chown(path, UID, UID)
    supervisor = processes.start(
        "supervisor",
        [interpreter, str(code / "named.py")],
        base / "supervisor.log",
        env=env,
        prefix=[*UNPRIVILEGED, *NO_CAPABILITIES, "--"],
    )
    container = Container(env, supervisor, address, loaded.probe_port)
    try:
        bind = Bind(rndc_conf_path(loaded), address, loaded.dns_port)
        processes.wait_until(supervisor, bind.alive, timeout=30, what="running named with its rndc channel")
        yield container
    finally:
        supervisor.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_named_opens_its_control_channel_without_privileges(named_container: Container) -> None:
    """The default control port works where ports below 1024 are privileged (they are here)."""
    assert pathlib.Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip() == "1024"
    status = pathlib.Path(f"/proc/{named_container.named_pid()}/status").read_text()
    assert f"Uid:\t{UID}\t{UID}" in status
    assert "CapEff:\t0000000000000000" in status


def test_the_probes_answer_from_the_supervisor(named_container: Container) -> None:
    wait_for("/livez to pass", lambda: named_container.get("/livez")[0] == 200)
    zones = json.loads(named_container.get("/zones")[1])
    assert zones == {"applied": True, "zones": [{"name": ZONE, "dynamic": False}]}
    # A secondary with no primary yet: named answers, but the zone is not loaded.
    status, text = named_container.get("/readyz")
    assert status == 503 and f"{ZONE}: SERVFAIL" in text, text
    assert named_container.get("/nothing")[0] == 404


def test_a_hung_named_fails_liveness_and_recovers(named_container: Container) -> None:
    wait_for("/livez to pass", lambda: named_container.get("/livez")[0] == 200)
    named = named_container.named_pid()
    os.kill(named, signal.SIGSTOP)
    try:
        status, text = named_container.get("/livez")
        assert status == 503 and "named gave no answer within 1s" in text, text
    finally:
        os.kill(named, signal.SIGCONT)
    wait_for("/livez to pass again", lambda: named_container.get("/livez")[0] == 200)


def test_a_probe_costs_well_under_100ms_of_cpu(named_container: Container) -> None:
    wait_for("/livez to pass", lambda: named_container.get("/livez")[0] == 200)
    pids = [named_container.supervisor.pid, named_container.named_pid()]
    before = sum(cpu_seconds(pid) for pid in pids)
    rounds = 20
    for _ in range(rounds):
        assert named_container.get("/readyz")[0] == 503
        assert named_container.get("/livez")[0] == 200
    per_probe = (sum(cpu_seconds(pid) for pid in pids) - before) / (2 * rounds)
    assert per_probe < 0.02, f"{per_probe * 1000:.1f} ms of CPU per probe"


def test_the_startup_probe_waits_for_readiness_then_settles_for_liveness(named_container: Container) -> None:
    """/started?wait=N (the chart's startup probe) holds the request while named is not ready,
    so a normal start logs no failed readiness probe; a named that answers but cannot get
    ready (here: a secondary with no primary) is still started once the wait runs out."""
    wait_for("/livez to pass", lambda: named_container.get("/livez")[0] == 200)
    started = time.monotonic()
    status, text = named_container.get("/started?wait=2")
    waited = time.monotonic() - started
    assert status == 200 and "named answers queries" in text, text
    assert 1.9 <= waited < 4.5, waited
    assert named_container.get("/readyz")[0] == 503  # not ready: out of the Services
