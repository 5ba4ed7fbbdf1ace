"""A real local Kubernetes control plane: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler, all on 127.0.0.1, with TLS, RBAC,
the PodSecurity admission plugin and service-account token signing.

There is no kubelet and no kube-proxy: Pods are API objects only (tests set
their status.podIP to 127.0.0.x themselves), so the service and pod ranges
below are bookkeeping inside the API server, never routed anywhere.

    python -m tests.harness.cluster up | down | status
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import ssl
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import yaml

from tests.harness import processes
from tests.harness.processes import Process, StartupError
from tests.harness.tools import REPO, tool

SERVICE_CIDR = "10.96.0.0/24"  # allocated in API objects only; nothing routes it
DEFAULT_PORTS = {
    "etcd": 12379,
    "etcd_peer": 12380,
    "apiserver": 16443,
    "controller_manager": 20257,
    "scheduler": 20259,
}


def state_dir() -> pathlib.Path:
    """Where `make cluster-up` records its cluster (git-ignored); tests point it elsewhere."""
    return pathlib.Path(os.environ.get("BIND_HA_CLUSTER_DIR", REPO / ".cluster"))


@dataclass
class Ports:
    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    @classmethod
    def free(cls) -> Ports:
        """Ports the kernel says are free now (for tests run beside a dev cluster)."""
        return cls(**{name: processes.free_port() for name in DEFAULT_PORTS})


@dataclass
class ClusterRecord:
    """What `down` needs: where the state is and which PIDs are ours."""

    state_dir: str
    kubeconfig: str
    ports: dict[str, int]
    processes: list[dict[str, object]] = field(default_factory=list)

    def owned(self) -> list[Process]:
        return [
            Process(
                name=str(p["name"]),
                pid=int(str(p["pid"])),
                argv=[str(a) for a in p["argv"]],  # type: ignore[attr-defined]
                log=pathlib.Path(str(p["log"])),
            )
            for p in self.processes
        ]


def _openssl(*args: str, cwd: pathlib.Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


class Pki:
    """A throw-away CA with the certificates the control plane needs."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3",
            "-subj",
            "/CN=bind-ha-local-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            cwd=directory,
        )
        # Service-account tokens are signed with this key pair (TokenRequest).
        _openssl("genrsa", "-out", "sa.key", "2048", cwd=directory)
        _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)

    def path(self, name: str) -> str:
        return str(self.dir / name)

    def issue(self, name: str, subject: str, *, server: bool = False, ips: Sequence[str] = ()) -> None:
        """Issue NAME.crt/NAME.key signed by the CA (client auth, or serving on 127.0.0.1 and ips)."""
        ext = self.dir / f"{name}.ext"
        usage = "serverAuth" if server else "clientAuth"
        lines = [
            "basicConstraints=CA:FALSE",
            "keyUsage=digitalSignature,keyEncipherment",
            f"extendedKeyUsage={usage}",
        ]
        if server:
            extra = "".join(f",IP:{ip}" for ip in ips)
            lines.append(
                f"subjectAltName=IP:127.0.0.1,IP:10.96.0.1{extra},DNS:localhost,DNS:kubernetes,"
                "DNS:kubernetes.default,DNS:kubernetes.default.svc"
            )
        ext.write_text("\n".join(lines) + "\n")
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            subject,
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=self.dir,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3",
            "-extfile",
            ext.name,
            "-out",
            f"{name}.crt",
            cwd=self.dir,
        )


def write_kubeconfig(path: pathlib.Path, *, server: str, pki: Pki, user: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "bind-ha-local",
                "cluster": {"server": server, "certificate-authority": pki.path("ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate": pki.path(f"{user}.crt"),
                    "client-key": pki.path(f"{user}.key"),
                },
            }
        ],
        "contexts": [{"name": "bind-ha-local", "context": {"cluster": "bind-ha-local", "user": user}}],
        "current-context": "bind-ha-local",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


class LocalCluster:
    """Start (up) and stop (down) the control plane; state lives in state_dir.

    tests/harness/node.py runs the same components inside a network namespace: it
    overrides _spawn (how a process starts), _probe (where a health check connects
    from) and the *_args hooks (the flags a real node needs on top of these).
    """

    def __init__(self, state_dir: pathlib.Path, ports: Ports, kubeconfig: pathlib.Path) -> None:
        self.state_dir = state_dir
        self.ports = ports
        self.kubeconfig = kubeconfig
        self.processes: list[Process] = []

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports.apiserver}"

    def record(self) -> ClusterRecord:
        return ClusterRecord(
            state_dir=str(self.state_dir),
            kubeconfig=str(self.kubeconfig),
            ports=asdict(self.ports),
            processes=[
                {"name": p.name, "pid": p.pid, "argv": p.argv, "log": str(p.log)} for p in self.processes
            ],
        )

    def up(self) -> None:
        self._check_ports()
        try:
            pki = self._pki()
            self._start_etcd()
            self._start_apiserver(pki)
            self._start_controllers(pki)
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    # ---- hooks (see the class docstring) ----

    def _check_ports(self) -> None:
        for name, port in asdict(self.ports).items():
            processes.ensure_port_free(port, name.replace("_", "-"))

    def _probe(self, check: Callable[[], bool]) -> bool:
        """Run a health check (it connects to the components' addresses)."""
        return check()

    def _server_ips(self) -> tuple[str, ...]:
        """Addresses besides 127.0.0.1 the API server's certificate is valid for."""
        return ()

    def _apiserver_args(self, pki: Pki) -> list[str]:
        return [
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--authorization-mode=RBAC",
            "--enable-admission-plugins=PodSecurity,NamespaceLifecycle,ServiceAccount",
        ]

    def _controller_manager_args(self, pki: Pki) -> list[str]:
        return []

    # ---- the components ----

    def _pki(self) -> Pki:
        pki = Pki(self.state_dir / "pki")
        pki.issue("apiserver", "/CN=kube-apiserver", server=True, ips=self._server_ips())
        pki.issue("admin", "/O=system:masters/CN=bind-ha-admin")
        pki.issue("controller-manager", "/CN=system:kube-controller-manager")
        pki.issue("scheduler", "/CN=system:kube-scheduler")
        write_kubeconfig(self.kubeconfig, server=self.server, pki=pki, user="admin")
        for user in ("controller-manager", "scheduler"):
            write_kubeconfig(self.state_dir / f"{user}.kubeconfig", server=self.server, pki=pki, user=user)
        return pki

    def _spawn(self, name: str, argv: list[str]) -> Process:
        process = processes.start(name, argv, self.state_dir / "logs" / f"{name}.log")
        self.processes.append(process)
        return process

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports.etcd}"
        peer = f"http://127.0.0.1:{self.ports.etcd_peer}"
        etcd = self._spawn(
            "etcd",
            [
                tool("etcd"),
                "--name=local",
                f"--data-dir={self.state_dir / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=local={peer}",
                "--log-level=warn",
                "--quota-backend-bytes=1073741824",
            ],
        )
        healthy = f"{client}/health"
        processes.wait_until(
            etcd, lambda: self._probe(lambda: _http_ok(healthy)), timeout=30, what="serving /health"
        )

    def _start_apiserver(self, pki: Pki) -> None:
        apiserver = self._spawn(
            "kube-apiserver",
            [
                tool("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.ports.etcd}",
                *self._apiserver_args(pki),
                f"--secure-port={self.ports.apiserver}",
                f"--tls-cert-file={pki.path('apiserver.crt')}",
                f"--tls-private-key-file={pki.path('apiserver.key')}",
                f"--client-ca-file={pki.path('ca.crt')}",
                "--allow-privileged=true",
                f"--service-account-key-file={pki.path('sa.pub')}",
                f"--service-account-signing-key-file={pki.path('sa.key')}",
                "--service-account-issuer=https://kubernetes.default.svc",
                "--api-audiences=https://kubernetes.default.svc",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--cert-dir={self.state_dir / 'apiserver-certs'}",
                "--profiling=false",
                "--v=1",
            ],
        )
        processes.wait_until(
            apiserver, lambda: self._probe(lambda: self._readyz(pki)), timeout=90, what="ready (/readyz)"
        )

    def _start_controllers(self, pki: Pki) -> None:
        manager = self._spawn(
            "kube-controller-manager",
            [
                tool("kube-controller-manager"),
                f"--kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
                f"--authentication-kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
                f"--authorization-kubeconfig={self.state_dir / 'controller-manager.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.controller_manager}",
                f"--cert-dir={self.state_dir / 'controller-manager-certs'}",
                f"--service-account-private-key-file={pki.path('sa.key')}",
                f"--root-ca-file={pki.path('ca.crt')}",
                "--use-service-account-credentials=true",
                "--leader-elect=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                *self._controller_manager_args(pki),
                "--v=1",
            ],
        )
        scheduler = self._spawn(
            "kube-scheduler",
            [
                tool("kube-scheduler"),
                f"--kubeconfig={self.state_dir / 'scheduler.kubeconfig'}",
                f"--authentication-kubeconfig={self.state_dir / 'scheduler.kubeconfig'}",
                f"--authorization-kubeconfig={self.state_dir / 'scheduler.kubeconfig'}",
                "--bind-address=127.0.0.1",
                f"--secure-port={self.ports.scheduler}",
                f"--cert-dir={self.state_dir / 'scheduler-certs'}",
                "--leader-elect=false",
                "--v=1",
            ],
        )
        for process, port in ((manager, self.ports.controller_manager), (scheduler, self.ports.scheduler)):
            processes.wait_until(
                process,
                lambda port=port: self._probe(lambda: _https_ok(f"https://127.0.0.1:{port}/healthz")),
                timeout=60,
                what="healthy (/healthz)",
            )

    def _readyz(self, pki: Pki) -> bool:
        context = ssl.create_default_context(cafile=pki.path("ca.crt"))
        context.load_cert_chain(pki.path("admin.crt"), pki.path("admin.key"))
        with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=5) as reply:
            return bool(reply.read() == b"ok")


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return bool(reply.status == 200)


def _https_ok(url: str) -> bool:
    """Controllers serve /healthz on a self-signed certificate: only liveness is checked."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, context=context, timeout=5) as reply:
        return bool(reply.status == 200)


# ---- `make cluster-up` / `make cluster-down`: one recorded cluster per clone ----


def _load_record() -> ClusterRecord | None:
    try:
        return ClusterRecord(**json.loads((state_dir() / "state.json").read_text()))
    except FileNotFoundError:
        return None


def _running(record: ClusterRecord) -> bool:
    return all(process.alive() for process in record.owned())


def cluster_up() -> pathlib.Path:
    record = _load_record()
    if record and _running(record):
        print(f"cluster: already running (state in {record.state_dir})")
        return pathlib.Path(record.kubeconfig)
    if record:
        cluster_down()
    state_dir().mkdir(parents=True, exist_ok=True)
    state = pathlib.Path(tempfile.mkdtemp(prefix="bind-ha-cluster-"))
    cluster = LocalCluster(state, Ports(**DEFAULT_PORTS), state_dir() / "kubeconfig")
    try:
        cluster.up()
    except BaseException:
        shutil.rmtree(state, ignore_errors=True)
        (state_dir() / "kubeconfig").unlink(missing_ok=True)
        raise
    (state_dir() / "state.json").write_text(json.dumps(asdict(cluster.record()), indent=2))
    print(f"cluster: up at {cluster.server}; state in {state}")
    return cluster.kubeconfig


def cluster_down() -> None:
    record = _load_record()
    if record is None:
        print("cluster: not running")
        return
    for process in reversed(record.owned()):
        process.stop()
    shutil.rmtree(record.state_dir, ignore_errors=True)
    (state_dir() / "state.json").unlink()
    (state_dir() / "kubeconfig").unlink(missing_ok=True)
    print(f"cluster: stopped; removed {record.state_dir}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="cluster", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            kubeconfig = cluster_up()
            print(f"export KUBECONFIG={kubeconfig}")
        elif args.command == "down":
            cluster_down()
        else:
            record = _load_record()
            print("running" if record and _running(record) else "not running")
            return 0 if record and _running(record) else 1
    except StartupError as exc:
        print(f"cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
