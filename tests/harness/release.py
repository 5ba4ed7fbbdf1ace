"""Drive the chart on a real cluster: releases, their pods and roles, and a client pod.

What the e2e tier (tests/e2e) uses, and what later scenarios build on: `Release` finds
the primary, deletes a pod and waits for a new primary; `ClientPod` runs dig, nsupdate
or a dnspython script from inside the cluster (where the Services' addresses exist)
and reports what failed.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.harness.tools import REPO, tool

CHART = REPO / "chart"
ROLE_LABEL = "bind-ha.io/role"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60.0, interval: float = 0.5) -> None:
    """Poll condition() until it holds; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(interval)


@dataclass(frozen=True)
class Kube:
    """kubectl and helm with one kubeconfig."""

    kubeconfig: str

    def run(
        self, argv: Sequence[str], *, stdin: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            list(argv), input=stdin, capture_output=True, text=True, check=False, timeout=timeout
        )
        if check and result.returncode != 0:
            output = f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n{output}")
        return result

    def kubectl(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return self.run([tool("kubectl"), f"--kubeconfig={self.kubeconfig}", *args], **options)

    def helm(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return self.run([tool("helm"), f"--kubeconfig={self.kubeconfig}", *args], **options)

    def get(self, namespace: str, *args: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            self.kubectl("-n", namespace, "get", *args, "-o", "json").stdout
        )
        return document

    def apply(self, documents: Sequence[dict[str, Any]]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(documents))

    def restricted_namespace(self, prefix: str) -> str:
        """A new namespace enforcing the `restricted` Pod Security Standard."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.apply(
            [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}}]
        )
        return name

    def delete_namespace(self, name: str) -> None:
        """Delete in the background: the next test need not wait for it."""
        self.kubectl("delete", "namespace", name, "--wait=false", check=False)

    def warning_events(self, namespace: str, reason: str) -> list[str]:
        events = self.get(namespace, "events")["items"]
        return [f"{e['involvedObject']['name']}: {e['message']}" for e in events if e["reason"] == reason]


@dataclass
class Release:
    """One helm release of the chart."""

    kube: Kube
    namespace: str
    name: str = "dns"

    @property
    def fullname(self) -> str:
        return f"{self.name}-bind-ha"

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component=server"

    def install(self, *values: str, options: Sequence[str] = ()) -> None:
        args = [arg for path in values for arg in ("-f", path)]
        self.kube.helm("install", self.name, str(CHART), "-n", self.namespace, *args, *options)

    def uninstall(self) -> None:
        self.kube.helm("uninstall", self.name, "-n", self.namespace, "--wait", "--timeout=120s")

    def test(self) -> subprocess.CompletedProcess[str]:
        return self.kube.helm(
            "test", self.name, "-n", self.namespace, "--logs", "--timeout=300s", check=False
        )

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kube.get(self.namespace, "pods", "-l", self.selector)["items"]
        return items

    def roles(self) -> dict[str, str | None]:
        return {pod["metadata"]["name"]: pod["metadata"]["labels"].get(ROLE_LABEL) for pod in self.pods()}

    def primaries(self) -> list[str]:
        return sorted(name for name, role in self.roles().items() if role == "primary")

    def pod_ips(self) -> dict[str, str]:
        return {pod["metadata"]["name"]: pod["status"]["podIP"] for pod in self.pods()}

    def wait_one_primary(self, timeout: float = 60) -> str:
        wait_for(f"exactly one primary in {self.namespace}", lambda: len(self.primaries()) == 1, timeout)
        return self.primaries()[0]

    def delete_pod(self, pod: str, *, force: bool = False) -> None:
        extra = ["--grace-period=0", "--force"] if force else []
        self.kube.kubectl("-n", self.namespace, "delete", "pod", pod, "--wait=false", *extra)

    def wait_new_primary(self, old: str, timeout: float = 60) -> str:
        """A primary other than `old` (a replaced pod reuses its name: compare UIDs too)."""
        old_uid = next((p["metadata"]["uid"] for p in self.pods() if p["metadata"]["name"] == old), None)

        def moved() -> bool:
            for pod in self.pods():
                labels = pod["metadata"]["labels"]
                if labels.get(ROLE_LABEL) == "primary" and pod["metadata"]["uid"] != old_uid:
                    return True
            return False

        wait_for(f"a new primary replacing {old}", moved, timeout)
        return self.wait_one_primary(timeout)

    def upgrade(self, *values: str, options: Sequence[str] = ()) -> None:
        args = [arg for path in values for arg in ("-f", path)]
        self.kube.helm("upgrade", self.name, str(CHART), "-n", self.namespace, *args, *options)

    def rollback(self, revision: int | None = None, options: Sequence[str] = ()) -> None:
        target = [str(revision)] if revision is not None else []
        self.kube.helm("rollback", self.name, *target, "-n", self.namespace, *options)

    def replicas(self) -> int:
        return int(self.kube.get(self.namespace, "statefulset", self.fullname)["spec"]["replicas"])

    def all_ready(self, *, gone: Sequence[str] = ()) -> bool:
        """Every replica exists, is Ready and not terminating, and none has a UID in `gone`."""
        pods = self.pods()
        return len(pods) == self.replicas() and all(
            "deletionTimestamp" not in pod["metadata"]
            and pod["metadata"]["uid"] not in gone
            and any(
                c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
            )
            for pod in pods
        )

    def wait_all_ready(self, *, gone: Sequence[str] = (), timeout: float = 300) -> None:
        wait_for(
            f"every pod of {self.fullname} Ready", lambda: self.all_ready(gone=gone), timeout, interval=1
        )

    def uid(self, pod: str) -> str:
        return next(str(p["metadata"]["uid"]) for p in self.pods() if p["metadata"]["name"] == pod)

    def container_ids(self, pod: str, names: Sequence[str]) -> dict[str, str]:
        """The runtime IDs of the named containers (init, sidecar and regular) of a pod."""
        status = next(p["status"] for p in self.pods() if p["metadata"]["name"] == pod)
        every = [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]
        return {c["name"]: c["containerID"] for c in every if c["name"] in names and c.get("containerID")}

    def restarts(self, pod: str) -> int:
        """Container restarts of a pod so far (init, sidecar and regular containers)."""
        status = next(p["status"] for p in self.pods() if p["metadata"]["name"] == pod)
        every = [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]
        return sum(int(c.get("restartCount", 0)) for c in every)

    def service_ip(self, which: str) -> str:
        service = self.kube.get(self.namespace, "service", f"{self.fullname}-{which}")
        return str(service["spec"]["clusterIP"])

    def update_secret(self) -> str:
        secret = self.kube.get(self.namespace, "secret", f"{self.fullname}-tsig")
        return base64.b64decode(secret["data"]["update-secret"]).decode()

    def logs(self, pod: str, container: str) -> str:
        return self.kube.kubectl("-n", self.namespace, "logs", pod, "-c", container, check=False).stdout


@dataclass(frozen=True)
class DigAnswer:
    status: str
    flags: frozenset[str]
    answers: tuple[str, ...]  # the rdata of each answer record

    @property
    def authoritative(self) -> bool:
        return "aa" in self.flags


def parse_dig(output: str) -> DigAnswer:
    status, flags, answers = "", frozenset[str](), []
    section = None
    for line in output.splitlines():
        if "->>HEADER<<-" in line:
            status = line.split("status:", 1)[1].split(",", 1)[0].strip()
        elif line.startswith(";; flags:"):
            flags = frozenset(line.split(":", 1)[1].split(";", 1)[0].split())
        elif line.startswith(";; ANSWER SECTION"):
            section = "answer"
        elif not line.strip() or line.startswith(";;"):
            section = None
        elif section == "answer":
            answers.append(line.split(None, 4)[4])
    return DigAnswer(status, flags, tuple(answers))


@dataclass
class ClientPod:
    """A pod with BIND's tools and dnspython (the chart's image) that runs clients inside the cluster."""

    kube: Kube
    namespace: str
    image: str
    name: str = "client"
    started: bool = field(default=False, init=False)

    def manifest(self) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app": "bind-ha-e2e-client"},
            },
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "terminationGracePeriodSeconds": 1,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "runAsGroup": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "client",
                        "image": self.image,
                        "imagePullPolicy": "Never",
                        "command": ["sleep", "infinity"],
                        # Burstable, not BestEffort: the kubelet gives BestEffort pods 2 CPU
                        # shares, and the load program must keep its rate beside busy pods.
                        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        }

    def start(self, timeout: float = 120) -> ClientPod:
        self.kube.apply([self.manifest()])
        self.kube.kubectl(
            "-n",
            self.namespace,
            "wait",
            "--for=condition=Ready",
            f"pod/{self.name}",
            f"--timeout={timeout:g}s",
        )
        self.started = True
        return self

    def delete(self) -> None:
        self.kube.kubectl("-n", self.namespace, "delete", "pod", self.name, "--wait=false", check=False)

    def run(
        self, *argv: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        interactive = ["-i"] if stdin is not None else []
        return self.kube.kubectl(
            "-n", self.namespace, "exec", *interactive, self.name, "--", *argv, stdin=stdin, check=check
        )

    def dig(
        self, server: str, name: str, rdtype: str = "SOA", *, port: int = 53, tcp: bool = False
    ) -> DigAnswer:
        """One query; with no answer at all the status is "" (and dig's complaint the answer)."""
        argv = ["dig", "+norec", "+time=2", "+tries=2", f"@{server}", "-p", str(port), name, rdtype]
        result = self.run(*argv, *(["+tcp"] if tcp else []), check=False)
        answer = parse_dig(result.stdout)
        if not answer.status:
            return DigAnswer("", frozenset(), ((result.stdout + result.stderr).strip(),))
        return answer

    def nsupdate(self, server: str, commands: Sequence[str], *, key: str, port: int = 53) -> str:
        """Send one signed update (key: "alg:name:secret"); returns nsupdate's output."""
        script = "\n".join([f"server {server} {port}", *commands, "send", ""])
        result = self.run("nsupdate", "-v", "-y", key, stdin=script, check=False)
        assert result.returncode == 0, f"nsupdate failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def python(self, script: str, *args: str) -> str:
        """Run a Python script (dnspython is in the image) inside the cluster; returns stdout."""
        return self.run("python3", "-", *args, stdin=script).stdout


# ---- load through the Services, from a client pod (tests/harness/podload.py runs there) ---------

PODLOAD = REPO / "tests" / "harness" / "podload.py"


@dataclass(frozen=True)
class LoadSummary:
    """What the load program printed when it stopped (podload.py's "load" mode)."""

    raw: dict[str, Any]

    @property
    def seconds(self) -> float:
        return float(self.raw["seconds"])

    @property
    def queries(self) -> dict[str, Any]:
        return dict(self.raw["queries"])

    @property
    def failed_queries(self) -> int:
        return int(self.raw["queries"]["failed"])

    @property
    def failed_attempts(self) -> int:
        return int(self.raw["queries"]["attempt_failures"])

    @property
    def query_rate(self) -> float:
        return int(self.raw["queries"]["sent"]) / self.seconds

    @property
    def update_rate(self) -> float:
        return int(self.raw["updates"]["sent"]) / self.seconds

    @property
    def acknowledged(self) -> list[str]:
        return [name for name, _at in self.raw["updates"]["acknowledged"]]

    @property
    def failed_updates(self) -> int:
        return int(self.raw["updates"]["failed"])

    @property
    def write_outage(self) -> float:
        """The longest span without an acknowledged update through the primary Service."""
        gaps = self.raw["updates"]["gaps"]
        return float(gaps[0]["seconds"]) if gaps else self.seconds

    def outage_after(self, moment: float) -> float:
        """The write outage through the primary Service that began after `moment`: from the
        last acknowledged update before the first failure to the first one after it."""
        failures = self.failures_after(moment)
        if not failures:
            return 0.0
        acked = [at for _name, at in self.raw["updates"]["acknowledged"]]
        before = max((at for at in acked if at <= failures[0]), default=moment)
        after = min((at for at in acked if at > failures[0]), default=float(self.raw["stopped"]))
        return after - max(before, moment)

    def failures_after(self, moment: float) -> list[float]:
        return sorted(f["t"] for f in self.raw["updates"]["failures"] if f["t"] >= moment)

    def writable_after(self, moment: float) -> float:
        """Seconds from `moment` (e.g. a crash) until the primary Service acknowledged an update
        again after its first failure; 0 when no update failed after `moment`."""
        failures = self.failures_after(moment)
        if not failures:
            return 0.0
        acked = [at for _name, at in self.raw["updates"]["acknowledged"] if at > failures[0]]
        return (acked[0] if acked else float(self.raw["stopped"])) - moment

    def acknowledged_between(self, start: float, end: float) -> list[str]:
        return [name for name, at in self.raw["updates"]["acknowledged"] if start <= at <= end]

    def brief(self) -> str:
        """One line for a report: rates, failures, acknowledged updates."""
        q, u = self.raw["queries"], self.raw["updates"]
        return (
            f"{q['sent']} lookups ({self.query_rate:.0f}/s) {q['failed']} failed "
            f"({q['attempt_failures']} tries retried), {u['sent']} updates ({self.update_rate:.1f}/s) "
            f"{len(u['acknowledged'])} acknowledged {u['failed']} failed, over {self.seconds:.0f}s"
        )

    def describe(self) -> str:
        q, u = self.raw["queries"], self.raw["updates"]
        return (
            f"{self.seconds:.1f}s: queries {q['sent']} sent ({self.query_rate:.0f}/s, {q['tcp']} over TCP), "
            f"{q['failed']} failed, {q['attempt_failures']} failed attempts; updates {u['sent']} sent "
            f"({self.update_rate:.1f}/s), {len(u['acknowledged'])} acknowledged, {u['failed']} failed; "
            f"longest write gaps {[round(g['seconds'], 2) for g in u['gaps'][:3]]}; "
            f"query failures {q['failures'][:10]}; attempt failures {q['attempt_failure_list'][:10]}; "
            f"update failures {u['failures'][:10]}"
        )


class LoadRun:
    """podload.py running in a client pod until stop(): `kubectl exec -i`, the program as
    `python3 -c`, its stdin the stop signal."""

    def __init__(self, client: ClientPod, config: dict[str, Any]) -> None:
        argv = [
            tool("kubectl"),
            f"--kubeconfig={client.kube.kubeconfig}",
            "-n",
            client.namespace,
            "exec",
            "-i",
            client.name,
            "--",
            "python3",
            "-c",
            PODLOAD.read_text(),
            json.dumps(config),
        ]
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        if first.strip() != "started":
            _out, err = self.process.communicate(timeout=60)
            raise AssertionError(f"the load program did not start: {first}{err}")

    def stop(self) -> LoadSummary:
        out, err = self.process.communicate("stop\n", timeout=120)
        assert self.process.returncode == 0, f"the load program failed ({self.process.returncode}): {err}"
        return LoadSummary(json.loads(out))

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Workload:
    """What the scenarios send: lookups through the DNS Service (each with its expected
    authoritative answer) and signed updates of `zone` through the primary Service."""

    dns_server: str
    update_server: str
    zone: str
    key_name: str
    key_secret: str
    queries: tuple[dict[str, Any], ...]
    qps: float = 150
    ups: float = 20

    def config(self, tag: str) -> dict[str, Any]:
        return {
            "mode": "load",
            "dns_server": self.dns_server,
            "update_server": self.update_server,
            "zone": self.zone,
            "key_name": self.key_name,
            "key_secret": self.key_secret,
            "queries": list(self.queries),
            "qps": self.qps,
            "ups": self.ups,
            "tag": tag,
        }


def start_load(client: ClientPod, workload: Workload, tag: str) -> LoadRun:
    return LoadRun(client, workload.config(tag))


def zone_names(
    client: ClientPod, servers: Sequence[str], workload: Workload, prefix: str
) -> dict[str, list[str] | str]:
    """The owner names under `prefix` in workload.zone on each server ("ip:port"), by AXFR."""
    config = {
        "mode": "names",
        "servers": list(servers),
        "zone": workload.zone,
        "key_name": workload.key_name,
        "key_secret": workload.key_secret,
        "prefix": prefix,
    }
    out = client.run("python3", "-c", PODLOAD.read_text(), json.dumps(config)).stdout
    found: dict[str, list[str] | str] = json.loads(out.strip().splitlines()[-1])
    return found


def missing_updates(
    client: ClientPod,
    release: Release,
    workload: Workload,
    acknowledged: Sequence[str],
    prefix: str,
    timeout: float = 60,
) -> dict[str, list[str] | str]:
    """Acknowledged updates (labels in workload.zone) that a pod does not serve, by pod, once
    every pod has caught up or `timeout` ran out: empty when none is lost."""
    want = set(acknowledged)
    missing: dict[str, list[str] | str] = {}

    def complete() -> bool:
        servers = {f"{ip}:5353": pod for pod, ip in release.pod_ips().items()}
        missing.clear()
        for server, names in zone_names(client, list(servers), workload, prefix).items():
            if isinstance(names, str):
                missing[servers[server]] = names
            elif lost := sorted(want - set(names)):
                missing[servers[server]] = lost
        return not missing

    deadline = time.monotonic() + timeout
    while not complete() and time.monotonic() < deadline:
        time.sleep(0.5)
    return missing
