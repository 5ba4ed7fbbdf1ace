"""A real one-node Kubernetes cluster inside a network namespace made by the run.

    python -m tests.harness.node up | down | status | import-images

etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd (with
Debian's runc and bridge CNI), kubelet, kube-proxy (nftables), a dynamic volume
provisioner, CoreDNS and every pod all run in ONE network namespace: `lo` holds
127.0.0.1 and the node IP (a /32), a bridge holds the pod range, and the only
routes are those of the pod and service ranges. There is no default route and no
link to the host, so no packet can leave. The same processes share one private
mount namespace, so the kubelet's and containerd's mounts (volumes, pod network
namespaces, overlay snapshots) never appear in the host's and vanish with them.

The host reaches the API server through a forwarder (tests/harness/forward.py)
whose listening socket is bound to 127.0.0.1 in the caller's namespace; commands
that need the pod or Service addresses run inside with `nsenter --net=...`.

Every process of a run lives in the run's cgroup (tests/harness/cgroups.py), the
run is recorded in ~/.cache/bind-ha/node-runs/, and each start first reaps the
leftovers of runs that died (processes, cgroups, mounts, state). Names are per
run, so two runs never collide.

`make cluster-up` / `make cluster-down` run this module; the e2e tier
(tests/e2e) starts its own node with Node(...).up().
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import dns.message
import dns.query
import kubernetes
import yaml

from tests.harness import addons, processes
from tests.harness.cgroups import RunCgroup, hierarchy, own_path
from tests.harness.cluster import SERVICE_CIDR, LocalCluster, Pki, Ports, write_kubeconfig
from tests.harness.processes import Process, StartupError
from tests.harness.tools import BIN, CACHE, REPO, tool, versions

T = TypeVar("T")

NODE_NAME = "bind-ha-node"
NODE_IP = "10.200.0.1"  # exists only inside the node's namespace
CLUSTER_CIDR = "10.244.0.0/16"
POD_CIDR = "10.244.0.0/24"  # the first /24 of CLUSTER_CIDR: what the controller-manager allocates
POD_GATEWAY = "10.244.0.1"
BRIDGE = "cni0"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
RUN_PREFIX = "bind-ha-node-"
RUNS = CACHE / "node-runs"
IMAGES = CACHE / "images"
CNI_BIN = "/usr/lib/cni"
INNER_PORTS = Ports(etcd=2379, etcd_peer=2380, apiserver=6443, controller_manager=10257, scheduler=10259)
KUBELET_HEALTHZ = 10248
KUBE_PROXY_HEALTHZ = 10256
DEFAULT_HOST_PORT = 17443  # `make cluster-up`'s forwarder on the host's 127.0.0.1
CLONE_NEWNET = 0x40000000


def state_dir() -> pathlib.Path:
    """Where `make cluster-up` records its node (git-ignored); tests point it elsewhere."""
    return pathlib.Path(os.environ.get("BIND_HA_NODE_DIR", REPO / ".node"))


def image_archives() -> dict[str, pathlib.Path]:
    """The OCI archives the node imports: built by `make setup` (pause, coredns) and `make image`."""
    return {name: IMAGES / f"{name}.tar" for name in ("pause", "coredns", "bind-ha")}


def bind_ha_image() -> str:
    """The image the chart uses by default: localhost/bind-ha:<appVersion>."""
    chart = yaml.safe_load((REPO / "chart" / "Chart.yaml").read_text())
    return f"localhost/bind-ha:{chart['appVersion']}"


# ---- namespaces -------------------------------------------------------------------------------


def in_netns(netns: pathlib.Path, call: Callable[[], T]) -> T:
    """call() on a thread that joined netns (a network namespace is a per-thread attribute),
    so the sockets it opens connect inside; the calling thread stays where it is."""
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns({netns})")
            finally:
                os.close(fd)
            outcome.append((True, call()))
        except BaseException as error:  # handed to the caller below
            outcome.append((False, error))

    thread = threading.Thread(target=target, name="in-netns", daemon=True)
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks (with the PID, an identity PIDs cannot reuse)."""
    try:
        stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


# ---- the record of a run ----------------------------------------------------------------------


@dataclass
class RunRecord:
    """What tearing a run down needs, kept in RUNS while it exists (JSON)."""

    run_id: str
    state_dir: str
    cgroup: str
    # The process the run belongs to ({pid, start}) while it lives: a test session's node
    # dies with it. Empty once detached: `make cluster-up`'s node outlives the command.
    owner: dict[str, int]
    host_port: int
    kubeconfig: str
    processes: list[dict[str, Any]] = field(default_factory=list)  # name, pid, start, argv, log

    @property
    def path(self) -> pathlib.Path:
        return RUNS / f"{self.run_id}.json"

    def save(self) -> None:
        RUNS.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_suffix(f".{os.getpid()}.tmp")
        scratch.write_text(json.dumps(asdict(self), indent=2))
        scratch.replace(self.path)

    @classmethod
    def load(cls, path: pathlib.Path) -> RunRecord | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def remember(self, process: Process) -> None:
        self.processes.append(
            {
                "name": process.name,
                "pid": process.pid,
                "start": start_time(process.pid),
                "argv": process.argv,
                "log": str(process.log),
            }
        )
        self.save()

    def owned(self) -> list[Process]:
        """The recorded processes that still run what they ran (same PID, same start)."""
        alive = []
        for entry in self.processes:
            process = Process(entry["name"], entry["pid"], entry["argv"], pathlib.Path(entry["log"]))
            if start_time(process.pid) == entry["start"] and process.alive():
                alive.append(process)
        return alive

    def holder_pid(self) -> int | None:
        return next((p.pid for p in self.owned() if p.name == "namespaces"), None)

    def alive(self) -> bool:
        """Live while its owner runs (it may still be starting it); a detached run, while the
        holder of its namespaces runs."""
        if self.owner:
            return start_time(self.owner["pid"]) == self.owner["start"]
        return self.holder_pid() is not None

    def detach(self) -> None:
        self.owner = {}
        self.save()


def teardown(record: RunRecord) -> None:
    """Stop every process of the run, then remove its mounts, cgroups, state and record."""
    owned = record.owned()
    for process in reversed(owned):  # a polite SIGTERM first, all at once
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while any(p.alive() for p in owned) and time.monotonic() < deadline:
        time.sleep(0.05)
    cgroup = RunCgroup(record.cgroup)
    cgroup.kill()  # what is left: shims, containers, anything that ignored SIGTERM
    for process in owned:  # outside the cgroup only if moving it there failed
        process.stop(timeout=2)
    unmount_below(pathlib.Path(record.state_dir))
    cgroup.remove()
    shutil.rmtree(record.state_dir, ignore_errors=True)
    record.path.unlink(missing_ok=True)


def unmount_below(directory: pathlib.Path) -> list[str]:
    """Detach anything mounted at or below directory in this mount namespace (deepest first).
    The node's own mounts live in its private namespace; this catches any that leaked."""
    prefix = str(directory.resolve()) if directory.exists() else str(directory)
    mounted = []
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split(" ")[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            mounted.append(point)
    for point in sorted(mounted, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
    return mounted


def reap_stale_runs() -> list[str]:
    """Tear down the recorded runs (of this session's cgroup) that are no longer alive.
    Returns the run IDs reaped. A run is recorded before it makes anything, and its record
    is removed last, so every leftover has a record to find it by."""
    base = own_path().rstrip("/") + "/"
    reaped = []
    for path in sorted(RUNS.glob("*.json")) if RUNS.is_dir() else []:
        record = RunRecord.load(path)
        if record is None or not record.cgroup.startswith(base):
            continue  # another session's run: its own starts reap it
        if not record.alive():
            teardown(record)
            reaped.append(record.run_id)
    return reaped


# ---- the node ---------------------------------------------------------------------------------


def _http_ok(url: str, timeout: float = 3) -> bool:
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        return bool(reply.status == 200)


class Node(LocalCluster):
    """One node run. up() starts everything and waits for CoreDNS; down() removes it all."""

    def __init__(
        self,
        *,
        host_port: int,
        kubeconfig: pathlib.Path | None = None,
        extra_args: Mapping[str, Sequence[str]] | None = None,
        log: Callable[[str], None] = print,
    ) -> None:
        self.run_id = RUN_PREFIX + uuid.uuid4().hex[:8]
        state = pathlib.Path(tempfile.mkdtemp(prefix=f"{self.run_id}-"))  # short: socket paths
        super().__init__(state, INNER_PORTS, state / "admin.kubeconfig")
        self.host_port = host_port
        self.host_kubeconfig = kubeconfig or state / "kubeconfig"
        self.extra_args = dict(extra_args or {})
        self.log = log
        self.cgroup = RunCgroup.for_run(self.run_id)
        self.record = RunRecord(
            run_id=self.run_id,
            state_dir=str(state),
            cgroup=self.cgroup.path,
            owner={"pid": os.getpid(), "start": start_time(os.getpid()) or 0},
            host_port=host_port,
            kubeconfig=str(self.host_kubeconfig),
        )
        self.holder: Process | None = None
        self.timings: dict[str, float] = {}

    # ---- where things are ----

    @property
    def netns(self) -> pathlib.Path:
        assert self.holder is not None
        return pathlib.Path(f"/proc/{self.holder.pid}/ns/net")

    @property
    def mntns(self) -> pathlib.Path:
        assert self.holder is not None
        return pathlib.Path(f"/proc/{self.holder.pid}/ns/mnt")

    @property
    def socket(self) -> pathlib.Path:
        return self.state_dir / "containerd" / "containerd.sock"

    @property
    def host_server(self) -> str:
        return f"https://127.0.0.1:{self.host_port}"

    def enter(self) -> list[str]:
        """The prefix running a command in the node's network namespace (e.g. dig)."""
        return ["nsenter", f"--net={self.netns}"]

    def _env(self) -> dict[str, str]:
        path = f"{BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        return {**os.environ, "PATH": path, "PYTHONPATH": str(REPO)}

    # ---- LocalCluster's hooks ----

    def _spawn(self, name: str, argv: list[str], *, pass_fds: Sequence[int] = ()) -> Process:
        process = processes.start(
            name,
            [*argv, *self.extra_args.get(name, ())],
            self.state_dir / "logs" / f"{name}.log",
            env=self._env(),
            prefix=["nsenter", f"--net={self.netns}", f"--mount={self.mntns}", "--"],
            pass_fds=pass_fds,
        )
        self.cgroup.adopt(process.pid)
        self.processes.append(process)
        self.record.remember(process)
        return process

    def _check_ports(self) -> None:
        """The components' ports are the run's own namespace's; only the forwarder's is shared."""
        processes.ensure_port_free(self.host_port, "forwarder")

    def _probe(self, check: Callable[[], bool]) -> bool:
        return in_netns(self.netns, check)

    def _server_ips(self) -> tuple[str, ...]:
        return (NODE_IP,)

    def _apiserver_args(self, pki: Pki) -> list[str]:
        return [
            "--bind-address=0.0.0.0",  # inside the namespace: lo and the pods' bridge only
            f"--advertise-address={NODE_IP}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=PodSecurity,NamespaceLifecycle,ServiceAccount,NodeRestriction",
            "--kubelet-preferred-address-types=InternalIP",  # kubectl logs/exec: never resolve the name
            f"--kubelet-client-certificate={pki.path('apiserver-kubelet-client.crt')}",
            f"--kubelet-client-key={pki.path('apiserver-kubelet-client.key')}",
        ]

    def _controller_manager_args(self, pki: Pki) -> list[str]:
        return ["--allocate-node-cidrs=true", f"--cluster-cidr={CLUSTER_CIDR}", "--node-cidr-mask-size=24"]

    def _pki(self) -> Pki:
        pki = super()._pki()
        pki.issue("kubelet", f"/O=system:nodes/CN=system:node:{NODE_NAME}")
        pki.issue("kubelet-serving", f"/CN={NODE_NAME}", server=True, ips=(NODE_IP,))
        pki.issue("kube-proxy", "/CN=system:kube-proxy")
        pki.issue("apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client")
        for user in ("kubelet", "kube-proxy"):
            write_kubeconfig(self.state_dir / f"{user}.kubeconfig", server=self.server, pki=pki, user=user)
        write_kubeconfig(self.host_kubeconfig, server=self.host_server, pki=pki, user="admin")
        return pki

    # ---- up / down ----

    def up(self) -> None:
        started = time.monotonic()
        self.record.save()
        try:
            for run in reap_stale_runs():
                self.log(f"node: removed the leftovers of {run}")
            self._check_ports()
            self._check_tools()
            self._phase("namespaces", self._namespaces)
            self._phase("forwarder", self._start_forwarder)
            pki = self._phase("certificates", self._pki)
            self._phase("etcd", self._start_etcd)
            self._phase("containerd", self._start_containerd)
            importer = _Background(self._import_images)  # while the control plane starts
            self._phase("kube-apiserver", lambda: self._start_apiserver(pki))
            self._phase("controllers", lambda: self._start_controllers(pki))
            self._phase("kubelet", self._start_kubelet)
            self._phase("kube-proxy", self._start_kube_proxy)
            self._phase("images", importer.result)
            self._phase("node Ready", self._wait_node_ready)
            self.timings["node Ready"] = time.monotonic() - started
            self._phase("provisioner", self._start_provisioner)
            self._phase("addons", self._apply_addons)
            self._phase("CoreDNS Ready", self._wait_coredns)
        except BaseException:
            self.down()
            raise
        self.timings["total"] = time.monotonic() - started

    def down(self) -> None:
        teardown(self.record)
        self.processes.clear()

    def _phase(self, name: str, step: Callable[[], T]) -> T:
        started = time.monotonic()
        result = step()
        self.timings[name] = time.monotonic() - started
        return result

    def _check_tools(self) -> None:
        for name in ("kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "etcd"):
            tool(name)
        for path in ("/usr/sbin/runc", f"{CNI_BIN}/bridge", "/usr/sbin/nft", "/usr/bin/nsenter"):
            if not os.path.exists(path):
                raise StartupError(f"node: {path} is missing: run `make setup`")
        for name in ("pause", "coredns"):
            if not image_archives()[name].exists():
                raise StartupError(f"node: {image_archives()[name]} is missing: run `make setup`")

    def _namespaces(self) -> None:
        """One network and one private mount namespace, held by a process that only sleeps."""
        self.cgroup.create()
        holder = processes.start(
            "namespaces",
            [shutil.which("sleep") or "/bin/sleep", "infinity"],
            self.state_dir / "logs" / "namespaces.log",
            prefix=["unshare", "--net", "--mount", "--propagation", "private", "--"],
        )
        self.cgroup.adopt(holder.pid)
        self.holder = holder
        self.processes.append(holder)
        self.record.remember(holder)
        script = "\n".join(
            [
                "link set lo up",
                f"addr add {NODE_IP}/32 dev lo",
                f"link add {BRIDGE} type bridge",
                f"addr add {POD_GATEWAY}/24 dev {BRIDGE}",
                f"link set {BRIDGE} up",
                f"route add {SERVICE_CIDR} dev {BRIDGE} src {NODE_IP}",
            ]
        )
        self._run([*self.enter(), "ip", "-batch", "-"], stdin=script)
        sysctls = ["net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1"]
        self._run([*self.enter(), "sysctl", "-q", "-w", *sysctls])

    def _run(self, argv: list[str], *, stdin: str | None = None) -> str:
        result = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, check=False, env=self._env()
        )
        if result.returncode != 0:
            raise StartupError(f"node: {' '.join(argv)} failed: {result.stderr.strip()}")
        return result.stdout

    def _start_forwarder(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.host_port))
        try:
            forwarder = self._spawn(
                "forwarder",
                [
                    sys.executable,
                    "-m",
                    "tests.harness.forward",
                    f"--listen-fd={listener.fileno()}",
                    f"--to=127.0.0.1:{self.ports.apiserver}",
                ],
                pass_fds=[listener.fileno()],
            )
        finally:
            listener.close()  # the forwarder holds its own copy
        processes.wait_until(forwarder, lambda: True, timeout=5, what="starting")

    # ---- containerd ----

    def _start_containerd(self) -> None:
        root = self.state_dir / "containerd"
        (self.state_dir / "cni" / "conf").mkdir(parents=True, exist_ok=True)
        (self.state_dir / "cni" / "conf" / "10-bind-ha.conflist").write_text(json.dumps(self._cni_config()))
        root.mkdir(parents=True, exist_ok=True)
        config = root / "config.toml"
        config.write_text(self._containerd_config())
        containerd = self._spawn("containerd", [tool("containerd"), f"--config={config}"])
        processes.wait_until(
            containerd, lambda: self._ctr("version").returncode == 0, timeout=60, what="serving its socket"
        )

    def _ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        """ctr talks to containerd over its unix socket, reachable from any network namespace."""
        argv = [tool("ctr"), f"--address={self.socket}", "--namespace=k8s.io", *args]
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)

    def container_cgroup(self, container_id: str, controller: str = "memory") -> pathlib.Path:
        """The cgroup (v1, `controller`'s hierarchy) the kubelet made for a container:
        RUN/kubepods/QOS/podUID/ID."""
        container = container_id.split("://")[-1]
        mount = hierarchy(controller)
        if mount is None:
            raise RuntimeError(f"no cgroup v1 hierarchy holds the {controller} controller")
        root = mount / self.cgroup.path.lstrip("/")
        found = sorted((root / "kubepods").rglob(container))
        if not found:
            raise RuntimeError(f"no {controller} cgroup for container {container} under {root}")
        return found[0]

    def kill_container(self, container_id: str) -> None:
        """SIGKILL every process of one container through containerd, as a crash would."""
        result = self._ctr("tasks", "kill", "--all", "--signal", "SIGKILL", container_id.split("://")[-1])
        if result.returncode != 0:
            raise RuntimeError(f"ctr tasks kill {container_id} failed: {result.stderr.strip()}")

    def import_images(self, names: Sequence[str] = ("pause", "coredns", "bind-ha")) -> list[str]:
        """Import the cached OCI archives into containerd; returns what was imported."""
        imported = []
        for name in names:
            archive = image_archives()[name]
            if not archive.exists():
                continue
            result = self._ctr("images", "import", str(archive))
            if result.returncode != 0:
                raise StartupError(f"containerd: importing {archive} failed: {result.stderr.strip()}")
            imported.append(name)
        return imported

    def _import_images(self) -> None:
        imported = self.import_images()
        if "bind-ha" not in imported:
            self.log(f"node: no {image_archives()['bind-ha']}: run `make image` to get {bind_ha_image()}")

    def _cni_config(self) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": "bind-ha",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "hairpinMode": True,
                    "ipMasq": False,
                    "ipam": {
                        "type": "host-local",
                        "dataDir": str(self.state_dir / "cni" / "ipam"),
                        "ranges": [[{"subnet": POD_CIDR, "gateway": POD_GATEWAY}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }

    def _containerd_config(self) -> str:
        root = self.state_dir / "containerd"
        pause = versions()["PAUSE_IMAGE"]
        return f"""version = 4
root = "{root / "root"}"
state = "{root / "state"}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.blockfile",
  "io.containerd.snapshotter.v1.erofs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing", "io.containerd.nri.v1.nri",
]

[plugins."io.containerd.server.v1.grpc"]
  address = "{self.socket}"

[plugins."io.containerd.server.v1.ttrpc"]
  address = "{root / "containerd.sock.ttrpc"}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{root / "opt"}"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{pause}"

[plugins."io.containerd.cri.v1.runtime"]
  # runc cannot set a sandbox's oom_score_adj below ours here (no CAP_SYS_RESOURCE):
  # without this every sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  disable_apparmor = true
  # Pods keep the kernel's net.ipv4.ip_unprivileged_port_start=1024, as with containerd 1.x
  # and CRI-O: what runs here runs there (containerd 2.x would lower it to 0).
  enable_unprivileged_ports = false
  enable_unprivileged_icmp = false
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "/usr/sbin/runc"
        Root = "{root / "runc"}"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{CNI_BIN}"]
    conf_dir = "{self.state_dir / "cni" / "conf"}"
"""

    # ---- kubelet, kube-proxy ----

    def _start_kubelet(self) -> None:
        kubelet_dir = self.state_dir / "kubelet"
        kubelet_dir.mkdir(parents=True, exist_ok=True)
        resolv = self.state_dir / "resolv.conf"
        # The host's resolver is unreachable from the namespace; pods use CoreDNS anyway.
        resolv.write_text("nameserver 127.0.0.1\noptions ndots:1\n")
        config = self.state_dir / "kubelet.yaml"
        config.write_text(yaml.safe_dump(self._kubelet_config(resolv), sort_keys=False))
        kubelet = self._spawn(
            "kubelet",
            [
                tool("kubelet"),
                f"--config={config}",
                f"--kubeconfig={self.state_dir / 'kubelet.kubeconfig'}",
                f"--root-dir={kubelet_dir}",
                f"--cert-dir={kubelet_dir / 'pki'}",
                f"--node-ip={NODE_IP}",
                f"--hostname-override={NODE_NAME}",
                "--v=1",
            ],
        )
        processes.wait_until(
            kubelet,
            lambda: self._probe(lambda: _http_ok(f"http://127.0.0.1:{KUBELET_HEALTHZ}/healthz")),
            timeout=60,
            what="healthy (/healthz)",
        )

    def _kubelet_config(self, resolv: pathlib.Path) -> dict[str, Any]:
        pki = self.state_dir / "pki"
        return {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": NODE_IP,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": KUBELET_HEALTHZ,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(pki / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(pki / "kubelet-serving.key"),
            # This VM: cgroup v1 controllers (the v2 hierarchy is empty), no swap accounting.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": self.cgroup.path,
            "cgroupsPerQOS": True,
            "enforceNodeAllocatable": ["pods"],
            "failSwapOn": False,
            "oomScoreAdj": 0,  # lowering it needs CAP_SYS_RESOURCE, which root lacks here
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "clusterDomain": CLUSTER_DOMAIN,
            "clusterDNS": [DNS_SERVICE_IP],
            "resolvConf": str(resolv),
            "podLogsDir": str(self.state_dir / "pod-logs"),
            "volumePluginDir": str(self.state_dir / "kubelet" / "volume-plugins"),
            # A small, shared disk: evict only when it is really full, and never collect
            # the imported images (nothing could pull them again).
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "nodefs.inodesFree": "1%",
                "imagefs.available": "1%",
                "imagefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "shutdownGracePeriod": "0s",
        }

    def _start_kube_proxy(self) -> None:
        config = self.state_dir / "kube-proxy.yaml"
        zero = "0s"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                    "kind": "KubeProxyConfiguration",
                    "clientConnection": {"kubeconfig": str(self.state_dir / "kube-proxy.kubeconfig")},
                    "mode": "nftables",
                    "bindAddress": NODE_IP,
                    "healthzBindAddress": f"127.0.0.1:{KUBE_PROXY_HEALTHZ}",
                    "metricsBindAddress": "127.0.0.1:10249",
                    "nodePortAddresses": [f"{NODE_IP}/32"],
                    "clusterCIDR": CLUSTER_CIDR,
                    "hostnameOverride": NODE_NAME,
                    "oomScoreAdj": 0,
                    # 0 everywhere: kube-proxy leaves the host's (global) conntrack sysctls alone.
                    "conntrack": {
                        "maxPerCore": 0,
                        "min": 0,
                        "tcpEstablishedTimeout": zero,
                        "tcpCloseWaitTimeout": zero,
                        "udpTimeout": zero,
                        "udpStreamTimeout": zero,
                    },
                },
                sort_keys=False,
            )
        )
        self._spawn("kube-proxy", [tool("kube-proxy"), f"--config={config}", "--v=1"])

    def _start_provisioner(self) -> None:
        provisioner = self._spawn(
            "provisioner",
            [
                sys.executable,
                "-m",
                "tests.harness.provisioner",
                f"--kubeconfig={self.kubeconfig}",
                f"--root={self.state_dir / 'volumes'}",
            ],
        )
        processes.wait_until(provisioner, lambda: True, timeout=5, what="starting")

    # ---- waiting for the API's view ----

    def api(self) -> kubernetes.client.ApiClient:
        return kubernetes.config.new_client_from_config(config_file=str(self.host_kubeconfig))

    def _wait_node_ready(self) -> None:
        core = kubernetes.client.CoreV1Api(self.api())
        kubelet = self._process("kubelet")

        def ready() -> bool:
            node = core.read_node(NODE_NAME)
            return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])

        processes.wait_until(kubelet, ready, timeout=120, what="registering a Ready node")
        proxy = self._process("kube-proxy")
        processes.wait_until(
            proxy,
            lambda: self._probe(lambda: _http_ok(f"http://127.0.0.1:{KUBE_PROXY_HEALTHZ}/healthz")),
            timeout=60,
            what="healthy (/healthz)",
        )

    def _apply_addons(self) -> None:
        documents = addons.manifests(
            coredns_image=f"localhost/coredns:{versions()['COREDNS_VERSION']}", dns_service_ip=DNS_SERVICE_IP
        )
        text = yaml.safe_dump_all(documents, sort_keys=False)
        argv = [tool("kubectl"), f"--kubeconfig={self.host_kubeconfig}", "apply", "--server-side", "-f", "-"]
        result = subprocess.run(argv, input=text, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StartupError(f"node: applying CoreDNS and the StorageClass failed: {result.stderr}")

    def _wait_coredns(self) -> None:
        apps = kubernetes.client.AppsV1Api(self.api())
        kubelet = self._process("kubelet")

        def available() -> bool:
            status = apps.read_namespaced_deployment("coredns", "kube-system").status
            return bool(status.ready_replicas)

        try:
            processes.wait_until(kubelet, available, timeout=120, what="running a Ready CoreDNS")
            # Ready is not reachable: kube-proxy programs the Service once it sees the endpoint.
            proxy = self._process("kube-proxy")
            processes.wait_until(
                proxy, self._service_dns_works, timeout=60, what="answering DNS through the kube-dns Service"
            )
        except StartupError as error:
            kubectl = [tool("kubectl"), f"--kubeconfig={self.host_kubeconfig}", "-n", "kube-system"]
            pods = self._run([*kubectl, "describe", "pods"])
            raise StartupError(f"{error}\nCoreDNS pods:\n{pods[-3000:]}") from None

    def _service_dns_works(self) -> bool:
        """The cluster's resolver answers through its Service address, inside the namespace."""

        def ask() -> bool:
            query = dns.message.make_query(f"kubernetes.default.svc.{CLUSTER_DOMAIN}", "A")
            reply = dns.query.udp(query, DNS_SERVICE_IP, timeout=1)
            return any(rdata.to_text() == "10.96.0.1" for rrset in reply.answer for rdata in rrset)

        return self._probe(ask)

    def _process(self, name: str) -> Process:
        return next(p for p in self.processes if p.name == name)


class _Background:
    """Run a step on a thread; result() waits for it and re-raises its error."""

    def __init__(self, step: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(step,), daemon=True)
        self.thread.start()

    def _run(self, step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException as error:  # handed over in result()
            self.error = error

    def result(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


# ---- `make cluster-up` / `make cluster-down`: one recorded node per clone ----------------------


def _current() -> RunRecord | None:
    try:
        run_id = json.loads((state_dir() / "state.json").read_text())["run_id"]
    except (OSError, ValueError, KeyError):
        return None
    return RunRecord.load(RUNS / f"{run_id}.json")


def node_up() -> RunRecord:
    record = _current()
    if record is not None and record.alive():
        print(f"node: already running ({record.run_id}, state in {record.state_dir})")
        return record
    state_dir().mkdir(parents=True, exist_ok=True)
    node = Node(host_port=DEFAULT_HOST_PORT, kubeconfig=state_dir() / "kubeconfig")
    node.up()
    node.record.detach()  # it outlives this command, until `make cluster-down`
    (state_dir() / "state.json").write_text(json.dumps({"run_id": node.run_id}))
    phases = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in node.timings.items())
    print(f"node: Ready in {node.timings['node Ready']:.1f}s, CoreDNS Ready at {node.timings['total']:.1f}s")
    print(f"node: phases: {phases}")
    print(f"node: run {node.run_id}, state in {node.state_dir}, logs in {node.state_dir / 'logs'}")
    return node.record


def print_usage(record: RunRecord) -> None:
    holder = record.holder_pid()
    print(f"export KUBECONFIG={record.kubeconfig}")
    print("# Pod and Service addresses exist only inside the node's network namespace; enter it with:")
    name = "kubernetes.default.svc.cluster.local"
    print(f"#   nsenter --net=/proc/{holder}/ns/net dig @{DNS_SERVICE_IP} {name}")
    print("# Images: `make image` builds localhost/bind-ha and imports it into this node.")


def node_down() -> None:
    record = _current()
    if record is None:
        print("node: not running")
        return
    teardown(record)
    (state_dir() / "state.json").unlink(missing_ok=True)
    (state_dir() / "kubeconfig").unlink(missing_ok=True)
    print(f"node: stopped {record.run_id}; removed {record.state_dir} and its cgroups")


def node_import_images() -> int:
    record = _current()
    if record is None or not record.alive():
        print("node: not running; `make cluster-up` imports the images when it starts")
        return 0
    argv = [tool("ctr"), f"--address={record.state_dir}/containerd/containerd.sock", "--namespace=k8s.io"]
    archive = image_archives()["bind-ha"]
    subprocess.run([*argv, "images", "import", str(archive)], check=True)
    print(f"node: imported {archive} into {record.run_id}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="node", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status", "import-images"])
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            print_usage(node_up())
        elif args.command == "down":
            node_down()
        elif args.command == "import-images":
            return node_import_images()
        else:
            record = _current()
            running = record is not None and record.alive()
            print("running" if running else "not running")
            return 0 if running else 1
    except StartupError as exc:
        print(f"node: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
