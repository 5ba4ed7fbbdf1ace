"""A release's worth of "pods" run as local processes against the real API server.

Each LocalPod is a Pod object in the API (held out of scheduling by a
scheduling gate; the harness sets its status.podIP to a loopback address) plus
the processes its containers would run: the init hook once, then the named
supervisor (hooks/named.py, which runs named) and the agent (hooks/agent.py).
The agents authenticate with a ServiceAccount token from TokenRequest, bound to
the chart's own Role (rendered from chart/templates/rbac.yaml).
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import kubernetes
import yaml

from tests.harness import dnsclient, processes
from tests.harness.named import LoopbackAllocator
from tests.harness.processes import Process
from tests.harness.proxy import ApiProxy
from tests.harness.tools import REPO, path_with_tools, tool

RELEASE = "test"
SELECTOR_LABELS = {
    "app.kubernetes.io/name": "bind-ha",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "server",
}
ROLE_LABEL = "bind-ha.io/role"
STATUS_ANNOTATION = "bind-ha.io/status"
DNS_PORT = 5353
HEALTH_PORT = 8080
PROBE_PORT = 8081  # named's supervisor: /readyz, /livez, /zones
SERVICE_ACCOUNT = "test-bind-ha"
TRANSFER_KEY = "bind-ha-transfer"
UPDATE_KEY = "bind-ha-update"


@dataclass(frozen=True)
class Timing:
    lease_duration: float = 10
    renew_deadline: float = 6
    retry_period: float = 2
    # terminationGracePeriodSeconds: a stopping primary waits up to this less 5 s for a peer
    termination_grace: float = 20


# Pods the chart's Role lets the agents patch (by name, from replicaCount): the bench runs 5.
MAX_PODS = 8


def rbac_manifest(namespace: str) -> str:
    """The chart's Role, RoleBinding and admission policy, rendered by helm, for release 'test'.
    The agents run under exactly the rights a real install gives them."""
    rendered = subprocess.run(
        [
            tool("helm"),
            "template",
            RELEASE,
            str(REPO / "chart"),
            "--namespace",
            namespace,
            "--set",
            f"replicaCount={MAX_PODS}",
            "--show-only",
            "templates/rbac.yaml",
            "--show-only",
            "templates/serviceaccount.yaml",
            "--show-only",
            "templates/admission-policy.yaml",
            "--show-only",
            "templates/admission-policy-binding.yaml",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return rendered.stdout


def _children(pid: int) -> list[int]:
    try:
        return [int(child) for child in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


@dataclass(frozen=True)
class ProbeReply:
    status: int
    text: str

    @property
    def ready(self) -> bool:
        return self.status == 200


@dataclass
class LocalPod:
    release: LocalRelease
    name: str
    address: str
    root: pathlib.Path
    uid: str = ""
    agent: Process | None = None
    supervisor: Process | None = None
    named_pid: int | None = None
    generation: int = 0
    proxy: ApiProxy | None = None

    @property
    def run_dir(self) -> pathlib.Path:
        return self.root / "run"

    @property
    def data_dir(self) -> pathlib.Path:
        return self.root / "data"

    def env(self) -> dict[str, str]:
        release = self.release
        return {
            "PATH": path_with_tools(),
            "PYTHONPATH": str(REPO / "python"),
            "POD_NAME": self.name,
            "POD_UID": self.uid,
            "POD_NAMESPACE": release.namespace,
            "POD_IP": self.address,
            "BIND_HA_LEASE_NAME": f"{RELEASE}-bind-ha-leader",
            "BIND_HA_PEER_SELECTOR": ",".join(f"{k}={v}" for k, v in SELECTOR_LABELS.items()),
            "BIND_HA_LEASE_DURATION": str(release.timing.lease_duration),
            "BIND_HA_RENEW_DEADLINE": str(release.timing.renew_deadline),
            "BIND_HA_RETRY_PERIOD": str(release.timing.retry_period),
            "BIND_HA_TERMINATION_GRACE_PERIOD": str(release.timing.termination_grace),
            "BIND_HA_DNS_PORT": str(DNS_PORT),
            "BIND_HA_LISTEN_ADDRESS": self.address,
            "BIND_HA_LOCAL_DNS_ADDRESS": self.address,
            "BIND_HA_CONTROL_ADDRESS": self.address,
            "BIND_HA_HEALTH_ADDRESS": self.address,
            "BIND_HA_HEALTH_PORT": str(HEALTH_PORT),
            "BIND_HA_RUN_DIR": str(self.run_dir),
            "BIND_HA_DATA_DIR": str(self.data_dir),
            "BIND_HA_ZONES_FILE": str(release.zones_file),
            "BIND_HA_ZONES_DIR": str(release.zones_dir),
            "BIND_HA_ZONES_DIR_TYPE": release.zones_dir_type,
            "BIND_HA_TSIG_DIR": str(release.tsig_dir),
            "BIND_HA_TRANSFER_KEY_NAME": TRANSFER_KEY,
            "BIND_HA_UPDATE_KEY_NAME": UPDATE_KEY,
            "BIND_HA_KUBECONFIG": str(self.kubeconfig),
            "BIND_HA_LOG_LEVEL": "debug",
            "BIND_HA_SERIAL_MARGIN": str(release.serial_margin),
        }

    # ---- the Pod object ----

    def create_api_object(self) -> None:
        """(Re)create the Pod in the API with a new UID, and give it our address."""
        core = self.release.core
        with contextlib.suppress(kubernetes.client.ApiException):
            core.delete_namespaced_pod(self.name, self.release.namespace, grace_period_seconds=0)
        deadline = time.monotonic() + 30
        while True:
            try:
                pod = core.create_namespaced_pod(
                    self.release.namespace,
                    {
                        "metadata": {"name": self.name, "labels": dict(SELECTOR_LABELS)},
                        "spec": {
                            "schedulingGates": [{"name": "bind-ha.io/local-process"}],
                            "serviceAccountName": SERVICE_ACCOUNT,
                            "automountServiceAccountToken": False,
                            "containers": [{"name": "named", "image": "localhost/bind-ha:dev"}],
                        },
                    },
                )
                break
            except kubernetes.client.ApiException as error:  # the old object may still be going away
                if error.status != 409 or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.uid = pod.metadata.uid
        core.patch_namespaced_pod_status(
            self.name,
            self.release.namespace,
            {"status": {"podIP": self.address, "podIPs": [{"ip": self.address}]}},
        )

    def labels(self) -> dict[str, str]:
        pod = self.release.core.read_namespaced_pod(self.name, self.release.namespace)
        return dict(pod.metadata.labels or {})

    def role_label(self) -> str | None:
        return self.labels().get(ROLE_LABEL)

    def serving_view(self) -> str:
        """The named view serving this pod's zones (the agent records it in its data directory)."""
        try:
            return (self.data_dir / "serving-view").read_text().strip()
        except FileNotFoundError:
            return "blue"

    def role_file(self) -> str | None:
        try:
            return (self.run_dir / "role").read_text().strip()
        except FileNotFoundError:
            return None

    @property
    def identity(self) -> str:
        return f"{self.name}/{self.uid}"

    @property
    def kubeconfig(self) -> pathlib.Path:
        """The agent's credentials: the release's token, through this pod's own API proxy."""
        return self.root / "agent.kubeconfig"

    def connect(self) -> None:
        host, port = self.release.api_address
        self.proxy = ApiProxy(host, port)
        self.root.mkdir(parents=True, exist_ok=True)
        self.kubeconfig.write_text(self.release.agent_kubeconfig_text(self.proxy.url))

    # ---- the processes ----

    def _log(self, what: str) -> pathlib.Path:
        return self.root / "logs" / f"{what}.{self.generation}.log"

    def start(self) -> None:
        self.run_init()
        self.start_named()
        self.start_agent()

    def run_init(self) -> None:
        """The init container: keys and the first named.conf (a new generation of logs)."""
        self.generation += 1
        hooks = REPO / "hooks"
        init = subprocess.run(
            [sys.executable, str(hooks / "init.py")],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self._log("init").parent.mkdir(parents=True, exist_ok=True)
        self._log("init").write_text(init.stdout + init.stderr)
        if init.returncode != 0:
            raise processes.StartupError(f"{self.name}: init failed:\n{init.stdout}{init.stderr}")

    def start_named(self) -> None:
        self.supervisor = processes.start(
            f"{self.name}-named",
            [sys.executable, str(REPO / "hooks" / "named.py")],
            self._log("named"),
            env=self.env(),
        )
        processes.wait_until(self.supervisor, self._named_started, timeout=30, what="running named")

    def _named_started(self) -> bool:
        assert self.supervisor is not None
        children = _children(self.supervisor.pid)
        if not children:
            return False
        self.named_pid = children[0]
        rndc = subprocess.run(
            [tool("rndc"), "-c", str(self.run_dir / "rndc.conf"), "status"], capture_output=True, check=False
        )
        return rndc.returncode == 0

    def start_agent(self) -> None:
        self.agent = processes.start(
            f"{self.name}-agent",
            [sys.executable, str(REPO / "hooks" / "agent.py")],
            self._log("agent"),
            env=self.env(),
        )

    def kill_agent(self, sig: signal.Signals = signal.SIGKILL) -> None:
        if self.agent is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.agent.pid, sig)

    def crash(self) -> None:
        """SIGKILL the agent, the supervisor and named at once: a node dying under the pod."""
        for pid in [p.pid for p in (self.agent, self.supervisor) if p] + (
            [self.named_pid] if self.named_pid else []
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        """Graceful: SIGTERM named's supervisor first (as the kubelet does), then the agent, each
        killed if still running after the grace period."""
        grace = self.release.timing.termination_grace + 2
        if self.supervisor is not None:
            self.supervisor.stop(timeout=grace)
        if self.agent is not None:
            self.agent.stop(timeout=grace)
        self._reap()

    def _reap(self) -> None:
        if self.named_pid is not None:
            processes.stop_pid(self.named_pid, "named", timeout=5)
        self.agent = self.supervisor = None
        self.named_pid = None

    def probe(self) -> ProbeReply:
        """named's readiness probe, as the kubelet asks it: the supervisor's /readyz."""
        url = f"http://{self.address}:{PROBE_PORT}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                return ProbeReply(reply.status, reply.read().decode().strip())
        except urllib.error.HTTPError as error:
            return ProbeReply(error.code, error.read().decode().strip())
        except OSError as error:
            return ProbeReply(0, f"no answer: {error}")

    def agent_alive(self) -> bool:
        return self.agent is not None and self.agent.alive()

    def wait_for_log(self, text: str, *, timeout: float = 30, what: str = "agent") -> None:
        """Wait until the agent's (or named's) log, over every start, contains text."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text(what):
            assert time.monotonic() < deadline, (
                f"{self.name} never logged {text!r}:\n{self.log_text(what)[-3000:]}"
            )
            time.sleep(0.1)

    def log_text(self, what: str = "agent") -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted((self.root / "logs").glob(f"{what}.*.log"))
        )


@dataclass
class LocalRelease:
    """Namespace, ServiceAccount + chart RBAC, token kubeconfig, TSIG secrets and zones for local pods."""

    api_client: kubernetes.client.ApiClient
    admin_kubeconfig: str
    namespace: str
    root: pathlib.Path
    allocator: LoopbackAllocator
    timing: Timing = field(default_factory=Timing)
    zones_dir_type: str = "static"
    serial_margin: int = 1000
    pods: list[LocalPod] = field(default_factory=list)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.api_client)

    @property
    def zones_file(self) -> pathlib.Path:
        return self.root / "zones" / "zones.yaml"

    @property
    def zones_dir(self) -> pathlib.Path:
        return self.root / "zones-dir"

    @property
    def tsig_dir(self) -> pathlib.Path:
        return self.root / "tsig"

    token: str = ""

    @property
    def api_address(self) -> tuple[str, int]:
        host, port = self.api_client.configuration.host.removeprefix("https://").rsplit(":", 1)
        return host, int(port)

    def secret(self, name: str) -> str:
        return (self.tsig_dir / name).read_text().strip()

    def setup(self, zones: list[dict[str, object]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.core.create_namespace({"metadata": {"name": self.namespace}})
        subprocess.run(
            [
                tool("kubectl"),
                f"--kubeconfig={self.admin_kubeconfig}",
                "apply",
                "-n",
                self.namespace,
                "-f",
                "-",
            ],
            input=rbac_manifest(self.namespace),
            text=True,
            check=True,
            capture_output=True,
        )
        self._request_token()
        self.tsig_dir.mkdir(exist_ok=True)
        for name in ("transfer-secret", "update-secret"):
            (self.tsig_dir / name).write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        self.zones_dir.mkdir(exist_ok=True)
        self.write_zones(zones)

    def _request_token(self) -> None:
        """A ServiceAccount token from TokenRequest, as the kubelet would project it."""
        self.token = self.core.create_namespaced_service_account_token(
            SERVICE_ACCOUNT, self.namespace, {"spec": {"expirationSeconds": 7200}}
        ).status.token

    def agent_kubeconfig_text(self, server: str) -> str:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": server,
                        "certificate-authority": self.api_client.configuration.ssl_ca_cert,
                    },
                }
            ],
            "users": [{"name": "agent", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "agent",
                    "context": {"cluster": "local", "user": "agent", "namespace": self.namespace},
                }
            ],
            "current-context": "agent",
        }
        return yaml.safe_dump(config)

    def write_zones(self, zones: list[dict[str, object]]) -> None:
        """Replace zones.yaml atomically, as a ConfigMap update lands in a pod."""
        self.zones_file.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.zones_file.with_suffix(".tmp")
        scratch.write_text(yaml.safe_dump(zones, sort_keys=False))
        scratch.replace(self.zones_file)

    def add_pods(self, count: int) -> list[LocalPod]:
        assert len(self.pods) + count <= MAX_PODS, f"the chart's Role names {MAX_PODS} pods"
        created = []
        for _ in range(count):
            name = f"{RELEASE}-bind-ha-{len(self.pods)}"
            pod = LocalPod(self, name, self.allocator.allocate(), self.root / name)
            pod.connect()
            pod.create_api_object()
            self.pods.append(pod)
            created.append(pod)
        return created

    def lease(self) -> kubernetes.client.V1Lease | None:
        leases = kubernetes.client.CoordinationV1Api(self.api_client)
        try:
            return leases.read_namespaced_lease(f"{RELEASE}-bind-ha-leader", self.namespace)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def holder(self) -> str | None:
        lease = self.lease()
        return lease.spec.holder_identity or None if lease else None

    def pod_by_identity(self, identity: str | None) -> LocalPod | None:
        return next((pod for pod in self.pods if pod.identity == identity), None)

    def wait_for_leader(self, *, timeout: float = 30, excluding: LocalPod | None = None) -> LocalPod:
        """The pod holding the Lease whose BIND is primary (role file) and labelled primary."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pod = self.pod_by_identity(self.holder())
            if pod is not None and pod is not excluding and pod.role_file() == "primary":
                with contextlib.suppress(kubernetes.client.ApiException):
                    if pod.role_label() == "primary":
                        return pod
            time.sleep(0.05)
        raise AssertionError(f"no leader within {timeout}s (holder {self.holder()})\n{self.logs_tail()}")

    def wait_for_agents(self, timeout: float = 30) -> None:
        """Every agent has run a round and published a healthy status on its pod."""
        deadline = time.monotonic() + timeout
        while True:
            pods = self.core.list_namespaced_pod(self.namespace).items
            statuses = [(pod.metadata.annotations or {}).get(STATUS_ANNOTATION, "") for pod in pods]
            if all('"healthy":true' in status for status in statuses):
                return
            assert time.monotonic() < deadline, f"agents not all healthy: {statuses}\\n{self.logs_tail()}"
            time.sleep(0.05)

    def start_pods(
        self, count: int, zones: tuple[str, ...] = ("example.test", "dyn.test")
    ) -> tuple[LocalPod, list[LocalPod]]:
        """count new pods, started; returns (leader, followers) once every agent is up and every
        zone has reached every pod."""
        pods = self.add_pods(count)
        for pod in pods:
            pod.start()
        leader = self.wait_for_leader()
        self.wait_for_agents()
        for zone in zones:
            self.wait_converged(zone)
        return leader, [pod for pod in pods if pod is not leader]

    def wait_converged(self, zone: str, *, timeout: float = 15, pods: list[LocalPod] | None = None) -> int:
        """Wait until every running pod (or those given) serves the same serial of zone; return it."""
        members = pods if pods is not None else [pod for pod in self.pods if pod.agent_alive()]
        deadline = time.monotonic() + timeout
        while True:
            serials = {dnsclient.serial(pod.address, DNS_PORT, zone) for pod in members}
            if len(serials) == 1 and None not in serials:
                return serials.pop()  # type: ignore[return-value]
            assert time.monotonic() < deadline, f"{zone} never converged: {serials}\\n{self.logs_tail()}"
            time.sleep(0.02)

    def contents(self, pod: LocalPod, zone: str) -> list[str]:
        """The zone's records as pod serves them, by a TSIG-signed AXFR."""
        return dnsclient.axfr(pod.address, DNS_PORT, zone, key=(TRANSFER_KEY, self.secret("transfer-secret")))

    def update_key(self) -> tuple[str, str]:
        return UPDATE_KEY, self.secret("update-secret")

    def report_readiness(self) -> dict[str, bool]:
        """Set each pod's Ready condition from named's readiness probe, as the kubelet would
        (a pod whose processes are gone is unready). There is no kubelet here: call it when
        a test needs the condition current."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        ready = {}
        for pod in self.pods:
            ready[pod.name] = pod.agent_alive() and pod.probe().ready
            condition = {"type": "Ready", "status": str(ready[pod.name]), "lastTransitionTime": now}
            self.core.patch_namespaced_pod_status(
                pod.name, self.namespace, {"status": {"conditions": [condition]}}
            )
        return ready

    def primary_labelled(self) -> list[str]:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"{ROLE_LABEL}=primary")
        return [pod.metadata.name for pod in pods.items]

    def logs_tail(self, lines: int = 15) -> str:
        out = []
        for pod in self.pods:
            for what in ("agent", "named"):
                text = pod.log_text(what).splitlines()[-lines:]
                out.append(f"--- {pod.name} {what}\n" + "\n".join(text))
        return "\n".join(out)

    def stop_all(self) -> None:
        """Tear the release down as `helm uninstall` would: the Pod objects go first, so no
        stopping primary waits for a peer that is going away too."""
        for pod in self.pods:
            with contextlib.suppress(kubernetes.client.ApiException):
                self.core.delete_namespaced_pod(pod.name, self.namespace, grace_period_seconds=0)
        for pod in self.pods:
            pod.stop()
            if pod.proxy is not None:
                pod.proxy.close()

    def __iter__(self) -> Iterator[LocalPod]:
        return iter(self.pods)
