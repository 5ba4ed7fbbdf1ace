"""Run shell commands against a live local release: how the README's "Operating a release"
output was captured.

    .ci/isolated .venv/bin/python -m tests.harness.operating 'bind-ha status' 'bind-ha pause'

starts a control plane and a three-pod release (namespace `dns`, release `test`) as
`make demo` does, then runs each command with KUBECONFIG pointing at the cluster and
`bind-ha` on PATH, and prints each command and what it printed. A command `crash-primary`
SIGKILLs the current primary's processes, `wait-leader` waits for a new primary, and
`ready` reports every pod's readiness as a kubelet would, `lose-volume POD` restarts a pod
with its data directory gone (a lost PersistentVolume), and `install-chart RELEASE
NAMESPACE [HELM ARGS]` installs the chart for real into another namespace (its pods never
run: there is no kubelet), for client-config, which reads the StatefulSet and Services.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import kubernetes

from tests.harness.cluster import LocalCluster, Ports
from tests.harness.examples import EXAMPLE_ZONES
from tests.harness.named import LoopbackAllocator
from tests.harness.pods import LocalRelease
from tests.harness.tools import REPO, path_with_tools


def _special(release: LocalRelease, command: str, env: dict[str, str]) -> bool:
    if command == "crash-primary":
        leader = release.wait_for_leader()
        leader.crash()
        print(f"$ # {leader.name} crashed (SIGKILL to its agent, supervisor and named)\n", flush=True)
        return True
    if command == "wait-leader":
        old = release.pod_by_identity(release.holder())
        release.wait_for_leader(timeout=60, excluding=old if old and not old.agent_alive() else None)
        release.report_readiness()
        return True
    if command == "ready":
        release.report_readiness()
        return True
    if command.startswith("lose-volume "):
        pod = next(pod for pod in release if pod.name == command.split()[1])
        pod.stop()
        shutil.rmtree(pod.data_dir)
        pod.start()
        pod.wait_for_log("has no copy of dynamic zone(s)")
        release.report_readiness()
        print(f"$ # {pod.name} restarted without its volume\n", flush=True)
        return True
    if command.startswith("install-chart "):
        name, namespace, *extra = shlex.split(command)[1:]
        chart = str(REPO / "chart")
        install = ["helm", "install", name, chart, "-n", namespace, "--create-namespace", *extra]
        subprocess.run(install, env=env, check=True, capture_output=True, cwd=REPO)
        return True
    return False


def run(root: Path, commands: list[str]) -> None:
    cluster = LocalCluster(root / "control-plane", Ports.free(), root / "kubeconfig")
    (root / "control-plane").mkdir()
    cluster.up()
    release: LocalRelease | None = None
    try:
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        release = LocalRelease(
            api_client=api,
            admin_kubeconfig=str(cluster.kubeconfig),
            namespace="dns",
            root=root / "release",
            allocator=LoopbackAllocator(42),
        )
        release.setup(EXAMPLE_ZONES)
        release.start_pods(3)
        release.report_readiness()
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PATH": path_with_tools()}
        namespace = ["kubectl", "config", "set-context", "--current", "--namespace=dns"]
        subprocess.run(namespace, env=env, check=True, capture_output=True)
        for command in commands:
            if _special(release, command, env):
                continue
            result = subprocess.run(
                command, shell=True, env=env, capture_output=True, text=True, cwd=REPO, check=False
            )
            print(f"$ {command}\n{result.stdout}{result.stderr}(exit {result.returncode})\n", flush=True)
    finally:
        if release is not None:
            release.stop_all()
        cluster.down()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bind-ha-operating-") as directory:
        run(Path(directory), sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
