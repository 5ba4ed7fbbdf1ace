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
