"""`make cluster-up` / `make cluster-down` as a developer runs them, a run killed with SIGKILL,
and a start that fails. The session's own node runs meanwhile: two runs never collide."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import uuid

import pytest

from tests.harness import processes
from tests.harness.cgroups import RunCgroup
from tests.harness.node import DNS_SERVICE_IP, RUN_PREFIX, RUNS, Node, RunRecord, reap_stale_runs, start_time
from tests.harness.processes import StartupError
from tests.harness.release import Kube
from tests.harness.tools import REPO, versions


def node_cli(command: str, state: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.harness.node", command],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
        env={**os.environ, "BIND_HA_NODE_DIR": str(state)},
    )


def current(state: pathlib.Path) -> RunRecord:
    run_id = json.loads((state / "state.json").read_text())["run_id"]
    record = RunRecord.load(RUNS / f"{run_id}.json")
    assert record is not None
    return record


def node_ready(kubeconfig: str) -> bool:
    nodes = json.loads(Kube(kubeconfig).kubectl("get", "nodes", "-o", "json").stdout)["items"]
    conditions = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}
    return conditions["Ready"] == "True"


def mounted(path: pathlib.Path) -> bool:
    return any(
        line.split(" ")[4] == str(path)
        for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines()
    )


def gone(record: RunRecord) -> list[str]:
    """What is left of a run; empty when nothing is."""
    left = []
    if pathlib.Path(record.state_dir).exists():
        left.append(f"state {record.state_dir}")
    if RunCgroup(record.cgroup).exists():
        left.append(f"cgroup {record.cgroup}")
    if record.path.exists():
        left.append(f"record {record.path}")
    left += [f"process {p.name} ({p.pid})" for p in record.owned()]
    return left


def test_cluster_up_down_and_the_leftovers_of_a_killed_run(tmp_path: pathlib.Path, node: Node) -> None:
    state = tmp_path / "node"
    try:
        up = node_cli("up", state)
        assert up.returncode == 0, up.stdout + up.stderr
        kubeconfig = re.search(r"^export KUBECONFIG=(\S+)$", up.stdout, re.MULTILINE)
        assert kubeconfig and kubeconfig.group(1) == str(state / "kubeconfig"), up.stdout
        assert node_ready(kubeconfig.group(1))
        # The printed way into the node's namespace reaches CoreDNS and the Service range.
        enter = re.search(r"nsenter --net=(/proc/\d+/ns/net) dig @(\S+) (\S+)", up.stdout)
        assert enter and enter.group(2) == DNS_SERVICE_IP, up.stdout
        dig = subprocess.run(
            ["nsenter", f"--net={enter.group(1)}", "dig", "+short", f"@{enter.group(2)}", enter.group(3)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert dig.stdout.strip() == "10.96.0.1", dig.stdout + dig.stderr
        again = node_cli("up", state)
        assert again.returncode == 0 and "already running" in again.stdout
        assert node_cli("status", state).returncode == 0
        first = current(state)

        # A crash: every process of the run dies by SIGKILL, and a mount is left behind.
        RunCgroup(first.cgroup).kill()
        leak = pathlib.Path(first.state_dir) / "leaked-mount"
        leak.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "leak", str(leak)], check=True)
        assert node_cli("status", state).returncode == 1

        restarted = node_cli("up", state)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        assert f"removed the leftovers of {first.run_id}" in restarted.stdout
        assert gone(first) == [] and not mounted(leak)
        second = current(state)
        assert second.run_id != first.run_id and second.cgroup != first.cgroup
        assert node_ready(str(state / "kubeconfig"))

        down = node_cli("down", state)
        assert down.returncode == 0 and f"stopped {second.run_id}" in down.stdout
        assert gone(second) == []
        assert node_cli("status", state).returncode == 1
        # The session's node, running beside all this, was not disturbed.
        assert node_ready(str(node.host_kubeconfig))
    finally:  # whatever failed, leave no node behind
        node_cli("down", state)
        reap_stale_runs()


def test_the_node_of_a_killed_test_session_is_removed_by_the_next_start(tmp_path: pathlib.Path) -> None:
    """A run belongs to the process that started it unless detached (`make cluster-up`):
    once its owner died, its processes, cgroup, state and record go at the next start."""
    owner = subprocess.Popen(["sleep", "60"])
    run_id = f"{RUN_PREFIX}{uuid.uuid4().hex[:8]}"
    cgroup = RunCgroup.for_run(run_id)
    state = tmp_path / run_id
    state.mkdir()
    record = RunRecord(
        run_id=run_id,
        state_dir=str(state),
        cgroup=cgroup.path,
        owner={"pid": owner.pid, "start": start_time(owner.pid) or 0},
        host_port=0,
        kubeconfig="",
    )
    record.save()
    cgroup.create()
    holder = processes.start("namespaces", ["/usr/bin/sleep", "infinity"], state / "holder.log")
    cgroup.adopt(holder.pid)
    record.remember(holder)
    assert run_id not in reap_stale_runs(), "a run whose owner lives is left alone"
    owner.kill()
    owner.wait()
    assert run_id in reap_stale_runs()
    assert gone(record) == [] and not holder.alive()


def test_a_failed_start_names_the_component_and_leaves_nothing() -> None:
    failing = Node(host_port=processes.free_port(), extra_args={"kubelet": ["--no-such-flag"]})
    with pytest.raises(StartupError) as failed:
        failing.up()
    message = str(failed.value)
    assert message.startswith("kubelet exited while"), message
    assert "unknown flag: --no-such-flag" in message, "the kubelet's log tail"
    assert gone(failing.record) == []


def test_the_forwarder_is_the_only_way_in(node: Node) -> None:
    """The node's namespace has no default route and no link but lo, the pods' bridge and the
    pods' veths on it; the host reaches the API server through the forwarder alone."""

    def inside(*argv: str) -> str:
        return subprocess.run([*node.enter(), *argv], capture_output=True, text=True, check=True).stdout

    routes = inside("ip", "route")
    assert "default" not in routes
    assert sorted(line.split()[0] for line in routes.splitlines()) == ["10.244.0.0/24", "10.96.0.0/24"]
    names = {line.split(":")[1].strip().split("@")[0] for line in inside("ip", "-o", "link").splitlines()}
    on_bridge = {
        line.split(":")[1].strip().split("@")[0]
        for line in inside("ip", "-o", "link", "show", "master", "cni0").splitlines()
    }
    assert names - on_bridge == {"lo", "cni0"}, names
    assert on_bridge and all(name.startswith("veth") for name in on_bridge), on_bridge
    version = Kube(str(node.host_kubeconfig)).kubectl("version", "-o", "json").stdout
    assert json.loads(version)["serverVersion"]["gitVersion"] == versions()["KUBERNETES_VERSION"]
