"""`make bench`, real pods: the chart on a one-node Kubernetes cluster (tests/harness/node.py),
measured as clients of its Services see it. A client pod runs tests/harness/podload.py:
~150 lookups/s through the DNS Service and 20 signed updates/s through the primary Service.

- install: `helm install` to every pod Ready with one primary;
- graceful: `kubectl delete pod` of the primary: write outage, failed lookups;
- crash: SIGKILL of the primary's named and agent (containerd), and forced deletion: time
  until the primary Service takes updates again, failed lookups, lost updates;
- rolling upgrade (every pod replaced): failed lookups, longest write gap;
- memory of each container from its cgroup (working set, as the kubelet counts it) and of
  each process (RSS): named, its supervisor, the agent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from tests.harness import processes
from tests.harness.node import Node, bind_ha_image
from tests.harness.release import Kube, Release
from tests.harness.scenarios import Scenario, Switch, crash, graceful, roll, settle, values_file, zones


class Table(Protocol):
    def add(
        self, key: str, label: str, samples: list[float], unit: str = "s", *, p99: bool = False
    ) -> None: ...

    def count(self, key: str, label: str, value: int, detail: str) -> None: ...


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def installs(kube: Kube, runs: int) -> tuple[list[float], Scenario]:
    """Install `runs` releases one after another (each in its own namespace); all but the last
    are deleted. Returns the install-to-Ready times and the last release."""
    samples: list[float] = []
    for run in range(runs):
        started = time.monotonic()
        scenario = Scenario.install(kube, bind_ha_image(), prefix=f"bench{run}")
        samples.append(time.monotonic() - started)
        log(f"install {run + 1}/{runs}: every pod Ready with a primary after {samples[-1]:.1f}s")
        if run < runs - 1:
            scenario.release.uninstall()
            scenario.delete()
    return samples, scenario


def working_set_mib(cgroup: Path) -> float:
    """usage minus inactive file pages: what the kubelet reports and evicts on."""
    usage = int((cgroup / "memory.usage_in_bytes").read_text())
    stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    return (usage - int(stat.get("total_inactive_file", 0))) / 2**20


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def process_name(pid: int) -> str:
    """named, or the Python entry point a process runs (named.py, agent.py)."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    words = [word.decode() for word in argv if word]
    if words and words[0].endswith("named"):
        return "named"
    return Path(words[1]).name if len(words) > 1 else (words[0] if words else "?")


def memory(node: Node, release: Release, results: Table) -> None:
    """Each container's working set from its cgroup, and each process's RSS, over the pods."""
    containers: dict[str, list[float]] = {"named": [], "agent": []}
    programs: dict[str, list[float]] = {"named": [], "named.py": [], "agent.py": []}
    for pod in release.roles():
        for name, container in release.container_ids(pod, list(containers)).items():
            cgroup = node.container_cgroup(container)
            containers[name].append(working_set_mib(cgroup))
            for pid in (int(p) for p in (cgroup / "cgroup.procs").read_text().split()):
                program = process_name(pid)
                if program in programs:
                    programs[program].append(rss_mib(pid))
    results.add(
        "pods_named_container_mib", "memory: named container (cgroup working set)", containers["named"], "MiB"
    )
    results.add(
        "pods_agent_container_mib", "memory: agent container (cgroup working set)", containers["agent"], "MiB"
    )
    results.add("pods_named_rss_mib", "memory: named (BIND) process RSS", programs["named"], "MiB")
    results.add(
        "pods_supervisor_rss_mib", "memory: named's supervisor process RSS", programs["named.py"], "MiB"
    )
    results.add("pods_agent_rss_mib", "memory: agent process RSS", programs["agent.py"], "MiB")


def upgrade_to(scenario: Scenario, values: str) -> Callable[[], None]:
    return lambda: scenario.release.upgrade(values)


def repeat(what: str, runs: int, switch: Callable[[int], Switch]) -> list[Switch]:
    done = []
    for run in range(runs):
        done.append(switch(run))
        each = done[-1]
        log(
            f"{what} {run + 1}/{runs}: {each.old} -> {each.new}, writable again after "
            f"{each.writable_after:.2f}s, outage {each.outage:.2f}s; {each.summary.brief()}; "
            f"lost {each.lost_count}"
        )
    return done


def lookups_detail(switches: list[Switch]) -> str:
    sent = sum(int(s.summary.queries["sent"]) for s in switches)
    failed = sum(s.summary.failed_queries for s in switches)
    return f"{failed} of {sent} lookups failed over {len(switches)} runs"


def measure(node: Node, results: Table, runs: int) -> None:
    kube = Kube(str(node.host_kubeconfig))
    install_times, scenario = installs(kube, 3)
    results.add(
        "pods_install_to_ready_seconds", "real pods: helm install -> 3/3 Ready with a primary", install_times
    )
    with scenario.load("warm", warm_up=0):
        settle(20)  # the pods under load a while before their memory is read
    memory(node, scenario.release, results)

    gracefuls = repeat("graceful", runs, lambda run: graceful(scenario, f"graceful{run}"))
    results.add(
        "pods_graceful_write_outage_seconds",
        "real pods: kubectl delete pod (primary) -> write outage via the primary Service",
        [s.outage for s in gracefuls],
    )
    results.add(
        "pods_graceful_failed_lookups",
        "real pods: kubectl delete pod (primary) -> failed lookups via the DNS Service",
        [float(s.summary.failed_queries) for s in gracefuls],
        "lookups",
    )
    results.count(
        "pods_graceful_lost",
        f"real pods: acknowledged updates lost in {runs} graceful deletes",
        sum(s.lost_count for s in gracefuls),
        f"of {sum(len(s.summary.acknowledged) for s in gracefuls)}; {lookups_detail(gracefuls)}",
    )

    kills = repeat("crash (SIGKILL)", runs, lambda run: crash(scenario, node.kill_container, f"kill{run}"))
    forced = repeat("crash (forced delete)", runs, lambda run: crash(scenario, None, f"force{run}"))
    for key, label, switches in (
        ("kill", "SIGKILL of named and agent", kills),
        ("force", "forced delete of the primary", forced),
    ):
        results.add(
            f"pods_crash_{key}_writable_seconds",
            f"real pods: {label} -> primary Service takes updates again",
            [s.writable_after for s in switches],
        )
        results.add(
            f"pods_crash_{key}_failed_lookups",
            f"real pods: {label} -> failed lookups via the DNS Service",
            [float(s.summary.failed_queries) for s in switches],
            "lookups",
        )
        same = sum(1 for s in switches if s.new == s.old)
        results.count(
            f"pods_crash_{key}_lost",
            f"real pods: acknowledged updates lost in {runs} crashes ({label})",
            sum(s.lost_count for s in switches),
            f"of {sum(len(s.summary.acknowledged) for s in switches)}; {lookups_detail(switches)}; "
            f"the crashed pod was primary again {same} times",
        )

    rolls = []
    for run in range(2):
        values = values_file({"zones": zones(), "podAnnotations": {"bench.bind-ha.io/run": str(run)}})
        rolls.append(roll(scenario, upgrade_to(scenario, values), f"roll{run}"))
        each = rolls[-1]
        log(f"rolling upgrade {run + 1}/2: done after {each.done_after:.1f}s; {each.summary.brief()}")
    results.add(
        "pods_rolling_upgrade_failed_lookups",
        "real pods: helm upgrade rolling 3 pods -> failed lookups via the DNS Service",
        [float(s.summary.failed_queries) for s in rolls],
        "lookups",
    )
    results.add(
        "pods_rolling_upgrade_write_gap_seconds",
        "real pods: helm upgrade rolling 3 pods -> longest write gap",
        [s.summary.write_outage for s in rolls],
    )
    results.add(
        "pods_rolling_upgrade_seconds",
        "real pods: helm upgrade rolling 3 pods -> rollout done",
        [s.done_after for s in rolls],
    )
    results.count(
        "pods_rolling_upgrade_lost",
        "real pods: acknowledged updates lost in 2 rolling upgrades",
        sum(s.lost_count for s in rolls),
        f"of {sum(len(s.summary.acknowledged) for s in rolls)}; {lookups_detail(rolls)}",
    )


def real_pods(results: Table, runs: int) -> dict[str, object]:
    """Start a node, measure, stop it; returns what the node took to start."""
    node = Node(host_port=processes.free_port(), log=log)
    node.up()
    try:
        log(f"node Ready after {node.timings['node Ready']:.1f}s")
        measure(node, results, runs)
    finally:
        node.down()
    return {
        "node_ready_seconds": round(node.timings["node Ready"], 1),
        "coredns_ready_seconds": round(node.timings["total"], 1),
        "runs": runs,
    }
