"""`make bench`: failover, replication and resource measurements on real components.

Everything runs locally inside the private network namespace: the real control
plane, and per pod the init hook, named under its supervisor and the agent.
Prints a table and writes bench/results/latest.json. Times are medians (and
p99 where asked) of one run on this machine; they are not test assertions.

    python -m bench.run [--quick] [--only PART]

The real-pod rows (bench/pods.py) run the chart on a one-node Kubernetes cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes

from bench import switching
from bench.pods import real_pods
from tests.harness import dnsclient, examples
from tests.harness.cluster import LocalCluster, Ports
from tests.harness.examples import EXAMPLE_ZONES as ZONES
from tests.harness.named import LoopbackAllocator
from tests.harness.pods import DNS_PORT, HEALTH_PORT, LocalPod, LocalRelease
from tests.harness.tools import REPO, path_with_tools, tool, versions
from tests.harness.traffic import Writer

RESULTS = REPO / "bench" / "results"


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@dataclass
class Results:
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # (measure, value, detail)
    data: dict[str, object] = field(default_factory=dict)

    def add(self, key: str, label: str, samples: list[float], unit: str = "s", *, p99: bool = False) -> None:
        median = statistics.median(samples)
        value = f"{median:.3f} {unit}" if unit == "s" else f"{median:.1f} {unit}"
        detail = f"n={len(samples)}, min {min(samples):.3f}, max {max(samples):.3f}"
        if p99:
            detail = f"p99 {percentile(samples, 0.99):.4f} {unit}, " + detail
        self.rows.append((label, value, detail))
        self.data[key] = {
            "median": median,
            "p99": percentile(samples, 0.99),
            "min": min(samples),
            "max": max(samples),
            "n": len(samples),
            "unit": unit,
            "samples": samples,
        }

    def count(self, key: str, label: str, value: int, detail: str) -> None:
        self.rows.append((label, str(value), detail))
        self.data[key] = {"value": value, "detail": detail}

    def outages(self, key: str, label: str, samples: list[float]) -> None:
        """Seconds of failed answers per switch: how many switches had any, and the longest
        (a median hides an outage that only some switches have)."""
        hit = sum(1 for sample in samples if sample > 0)
        detail = f"longest {max(samples):.3f} s; seconds of failed answers per switch"
        self.rows.append((label, f"{hit} of {len(samples)}", detail))
        self.data[key] = {
            "switches_with_failures": hit,
            "n": len(samples),
            "max": max(samples),
            "samples": samples,
        }

    def table(self) -> str:
        width = max(len(row[0]) for row in self.rows)
        value_width = max(len(row[1]) for row in self.rows)
        lines = [
            f"| {'measure':<{width}} | {'median':>{value_width}} | detail |",
            f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|--------|",
        ]
        lines += [
            f"| {label:<{width}} | {value:>{value_width}} | {detail} |" for label, value, detail in self.rows
        ]
        return "\n".join(lines)


@contextmanager
def workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="bind-ha-bench-") as scratch:
        yield Path(scratch)


@contextmanager
def control_plane(root: Path) -> Iterator[LocalCluster]:
    (root / "control-plane").mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(root / "control-plane", Ports.free(), root / "kubeconfig")
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


@contextmanager
def release_of(
    cluster: LocalCluster,
    root: Path,
    name: str,
    pods: int,
    zones: list[dict[str, object]],
    allocator: LoopbackAllocator,
) -> Iterator[LocalRelease]:
    api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    release = LocalRelease(
        api_client=api,
        admin_kubeconfig=str(cluster.kubeconfig),
        namespace=name,
        root=root / name,
        allocator=allocator,
    )
    release.setup(zones)
    try:
        for pod in release.add_pods(pods):
            pod.start()
        release.wait_for_leader(timeout=60)
        release.wait_for_agents(timeout=60)
        yield release
    finally:
        release.stop_all()


def accepted(release: LocalRelease, pod: LocalPod, name: str, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            dnsclient.update(
                pod.address,
                DNS_PORT,
                "dyn.test",
                add={name: "192.0.2.9"},
                key=release.update_key(),
                timeout=1,
            )
            == "NOERROR"
        ):
            return time.monotonic()
        time.sleep(0.01)
    raise RuntimeError(f"{pod.name} accepted no update within {timeout}s")


def visible_everywhere(pods: list[LocalPod], fqdn: str, timeout: float = 30) -> float:
    """The monotonic time at which fqdn was seen on every pod."""
    checks = [dnsclient.Presence(pod.address, DNS_PORT, fqdn) for pod in pods]
    deadline = time.monotonic() + timeout
    try:
        pending = list(checks)
        while pending:
            pending = [check for check in pending if not check()]
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"{fqdn} not visible everywhere within {timeout}s")
        return time.monotonic()
    finally:
        for check in checks:
            check.close()


def lost_updates(release: LocalRelease, survivors: list[LocalPod], acknowledged: list[str]) -> int:
    release.wait_converged("dyn.test", pods=survivors, timeout=30)
    present = {line.split()[0] for line in release.contents(survivors[0], "dyn.test")}
    return sum(1 for name in acknowledged if name not in present)


def switchovers(release: LocalRelease, results: Results, runs: int, *, crash: bool) -> None:
    """Crash (or gracefully stop) the primary `runs` times under a stream of updates."""
    kind = "crash" if crash else "graceful"
    switch_times, follow_times, gaps, lost, acknowledged = [], [], [], 0, 0
    for run in range(runs):
        old = release.wait_for_leader(timeout=60)
        release.wait_converged("dyn.test", timeout=30)
        survivors = [pod for pod in release if pod is not old]
        writer = Writer(
            lambda s=survivors: [p.address for p in s if p.agent_alive()],
            DNS_PORT,
            "dyn.test",
            release.update_key(),
            f"{kind}{run}-",
            pause=0.01,
        )
        writer.start()
        time.sleep(0.5)
        started = time.monotonic()
        # Stop in the background: the clock is on the takeover, not on the old pod's exit.
        stopping = threading.Thread(target=old.crash if crash else old.stop)
        stopping.start()
        new = release.wait_for_leader(excluding=old, timeout=60)
        switched = accepted(release, new, f"{kind}{run}-probe")
        switch_times.append(switched - started)
        others = [pod for pod in survivors if pod is not new]
        follow_times.append(visible_everywhere(others, f"{kind}{run}-probe.dyn.test") - switched)
        time.sleep(1.0)
        writer.halt.set()
        writer.join()
        stopping.join()
        gaps.append(writer.longest_gap(started))
        lost += lost_updates(release, survivors, writer.acknowledged)
        acknowledged += len(writer.acknowledged)
        old.start()  # the kubelet restarts the pod's containers on the same volume
        release.wait_for_agents(timeout=60)
        log(f"{kind} {run + 1}/{runs}: {old.name} -> {new.name} in {switch_times[-1]:.3f}s")
    label = (
        "crash failover (SIGKILL primary -> new primary accepts a signed update)"
        if crash
        else "graceful handover (SIGTERM primary pod -> new primary accepts a signed update)"
    )
    results.add(f"{kind}_switch_seconds", label, switch_times)
    results.add(
        f"{kind}_write_gap_seconds",
        f"{kind}: writes unavailable (longest gap between acknowledged updates)",
        gaps,
    )
    results.add(
        f"{kind}_follower_serves_seconds",
        f"after {kind}: new primary's change served by the other follower",
        follow_times,
    )
    results.count(
        f"{kind}_lost_acknowledged",
        f"acknowledged updates lost in {runs} {kind} switchovers",
        lost,
        f"of {acknowledged} acknowledged; updates at ~100/s to random live pods during each switch",
    )


def planned_switchovers(release: LocalRelease, results: Results, runs: int) -> None:
    """`bind-ha switchover --to POD` `runs` times under a stream of updates (the planned move:
    freeze, the target catches up, the Lease is handed to it), timed as the graceful handover
    is: from the command's start until the new primary accepts a signed update."""
    switch_times, reported, gaps, lost, acknowledged = [], [], [], 0, 0
    env = {"PATH": path_with_tools(), "HOME": str(release.root)}
    for run in range(runs):
        old = release.wait_for_leader(timeout=60)
        release.wait_converged("dyn.test", timeout=30)
        release.report_readiness()
        others = sorted((pod for pod in release if pod is not old), key=lambda pod: pod.name)
        target = others[run % len(others)]
        writer = Writer(
            lambda: [pod.address for pod in release],
            DNS_PORT,
            "dyn.test",
            release.update_key(),
            f"planned{run}-",
            pause=0.01,
        )
        writer.start()
        time.sleep(0.5)
        started = time.monotonic()
        command = [str(shutil.which("bind-ha", path=env["PATH"])), "switchover", "--to", target.name]
        command += ["--wait", "60"]
        command += ["-n", release.namespace, "--kubeconfig", release.admin_kubeconfig]
        moved = subprocess.run(command, capture_output=True, text=True, check=False, env=env, timeout=90)
        if moved.returncode != 0:
            writer.stop()
            raise RuntimeError(f"switchover {run + 1} failed: {moved.stdout}{moved.stderr}")
        switched = accepted(release, target, f"planned{run}-probe")
        switch_times.append(switched - started)
        reported.append(float(moved.stdout.split("the switchover took ")[1].split("s")[0]))
        time.sleep(1.0)
        writer.halt.set()
        writer.join()
        gaps.append(writer.longest_gap(started))
        lost += lost_updates(release, list(release), writer.acknowledged)
        acknowledged += len(writer.acknowledged)
        log(f"switchover {run + 1}/{runs}: {old.name} -> {target.name} in {switch_times[-1]:.3f}s")
    results.add(
        "planned_switch_seconds",
        "switchover (`bind-ha switchover --to POD` -> new primary accepts a signed update)",
        switch_times,
    )
    results.add(
        "planned_write_gap_seconds",
        "switchover: writes unavailable (longest gap between acknowledged updates)",
        gaps,
    )
    results.add(
        "planned_switch_reported_seconds", "switchover: the time `bind-ha switchover` prints", reported
    )
    results.count(
        "planned_lost_acknowledged",
        f"acknowledged updates lost in {runs} switchovers",
        lost,
        f"of {acknowledged} acknowledged; updates at ~100/s to random pods during each switch",
    )


def agent_resources(release: LocalRelease, results: Results, window: float) -> None:
    """RSS of each agent and API requests per minute over an idle window."""
    leader = release.wait_for_leader()
    before = {pod.name: api_requests(pod) for pod in release}
    time.sleep(window)
    per_minute = {pod.name: (api_requests(pod) - before[pod.name]) * 60 / window for pod in release}
    rss = [rss_mib(pod) for pod in release]
    results.add("agent_rss_mib", "agent resident memory (RSS)", rss, "MiB")
    results.add(
        "leader_api_requests_per_minute", "API requests/min, leader", [per_minute[leader.name]], "req/min"
    )
    followers = [value for name, value in per_minute.items() if name != leader.name]
    results.add("follower_api_requests_per_minute", "API requests/min, follower", followers, "req/min")


def api_requests(pod: LocalPod) -> float:
    with urllib.request.urlopen(f"http://{pod.address}:{HEALTH_PORT}/metrics", timeout=5) as reply:
        for line in reply.read().decode().splitlines():
            if line.startswith("bind_ha_api_requests_total "):
                return float(line.split()[1])
    raise RuntimeError("no bind_ha_api_requests_total")


def rss_mib(pod: LocalPod) -> float:
    assert pod.agent is not None
    for line in Path(f"/proc/{pod.agent.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def propagation(release: LocalRelease, results: Results, updates: int, secondaries: int) -> None:
    """Acknowledged update at the primary -> visible on every secondary."""
    leader = release.wait_for_leader()
    others = [pod for pod in release if pod is not leader]
    samples = []
    for index in range(updates):
        name = f"prop{secondaries}-{index}"
        acked = accepted(release, leader, name)
        samples.append(visible_everywhere(others, f"{name}.dyn.test") - acked)
    results.add(
        f"propagation_{secondaries}_secondaries_seconds",
        f"update acknowledged -> visible on all {secondaries} secondaries",
        samples,
        p99=True,
    )


def source_edits(release: LocalRelease, results: Results, edits: int) -> None:
    samples = []
    for index in range(edits):
        address = f"192.0.2.{100 + index}"
        zones = [dict(zone) for zone in ZONES]
        zones[0]["records"] = f"ns1 IN A 192.0.2.1\nwww IN A {address}\n"
        edited = time.monotonic()
        release.write_zones(zones)
        while any(
            dnsclient.lookup(pod.address, DNS_PORT, "www.example.test") != [address] for pod in release
        ):
            time.sleep(0.005)
        samples.append(time.monotonic() - edited)
    results.add("source_edit_to_served_seconds", "static zone source edit -> served by every pod", samples)


def big_zone(records: int) -> list[dict[str, object]]:
    return [examples.big_zone("big.test", records), *ZONES]


def transfer_seconds(pod: LocalPod, kind: str, after: int) -> float:
    """The duration named logs for the next completed transfer of big.test after log line `after`."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = pod.log_text("named").splitlines()[after:]
        for line in lines:
            if "transfer of 'big.test/IN" in line and "Transfer completed" in line:
                return float(line.split(" secs ")[0].rsplit(", ", 1)[1])
        time.sleep(0.1)
    raise RuntimeError(f"no {kind} of big.test on {pod.name}")


def big_transfers(release: LocalRelease, results: Results, records: int, runs: int) -> None:
    leader = release.wait_for_leader()
    follower = next(pod for pod in release if pod is not leader)
    release.wait_converged("big.test", timeout=300)
    axfr, ixfr, client = [], [], []
    for run in range(runs):
        mark = len(follower.log_text("named").splitlines())
        subprocess.run(
            [tool("rndc"), "-c", str(follower.run_dir / "rndc.conf"), "retransfer", "big.test"],
            check=True,
            capture_output=True,
        )
        axfr.append(transfer_seconds(follower, "AXFR", mark))
        release.wait_converged("big.test", timeout=120)
        mark = len(follower.log_text("named").splitlines())
        dnsclient.update(
            leader.address, DNS_PORT, "big.test", add={f"ixfr{run}": "192.0.2.5"}, key=release.update_key()
        )
        ixfr.append(transfer_seconds(follower, "IXFR", mark))
        started = time.monotonic()
        listed = release.contents(leader, "big.test")
        client.append(time.monotonic() - started)
        assert len(listed) > records
    results.add(
        "axfr_100k_seconds", f"AXFR of a {records:,}-record zone between pods (named's own timing)", axfr
    )
    results.add("ixfr_100k_seconds", f"IXFR of one change to the {records:,}-record zone", ixfr)
    results.add(
        "client_axfr_100k_seconds",
        f"signed AXFR of the {records:,}-record zone by a dnspython client",
        client,
    )


def outage_part(
    cluster: LocalCluster, root: Path, allocator: LoopbackAllocator, results: Results, *, quick: bool
) -> None:
    """Query outage at a pod changing role, by zone size: the mechanism alone (plain named),
    then the agents' promotions and demotions."""
    for records in (1_000, 10_000) if quick else (1_000, 10_000, 100_000):
        log(f"query outage while switching role, {records:,}-record zone")
        plain, staged = switching.reconfig_outage(root, allocator, records, 2 if quick else 5)
        results.outages(
            f"reconfig_outage_{records}_seconds",
            f"switches failing queries at named, type-changing reconfig (before), {records:,} records",
            plain,
        )
        results.outages(
            f"staged_switch_outage_{records}_seconds",
            f"switches failing queries at named, staged view switch (now), {records:,} records",
            staged,
        )
        zones = switching.outage_zones(records)
        with release_of(cluster, root, f"outage{records}", 3, zones, allocator) as release:
            promoted, demoted, asked = switching.switch_outage(release, 1 if quick else 3)
        switching.record_outage(results, records, promoted, demoted, asked)


def fence_part(
    cluster: LocalCluster, root: Path, allocator: LoopbackAllocator, results: Results, *, quick: bool
) -> None:
    log("three pods, 100 dynamic zones: fence latency")
    with release_of(cluster, root, "fence", 3, switching.many_zones(100), allocator) as release:
        fence = switching.fence_latency(release, 100, 3 if quick else 10)
        results.add(
            "fence_latency_100_zones_seconds",
            "fence: renew deadline passed -> all of 100 dynamic zones refuse updates",
            fence,
        )
        before = switching.per_zone_freeze_seconds(release.wait_for_leader(), 100)
        results.add(
            "per_zone_freeze_100_zones_seconds",
            "for comparison: one rndc freeze per zone, 100 zones (the former fence)",
            [before],
        )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs, for trying the bench itself")
    parser.add_argument("--keep", type=Path, help="work (and keep every log) in this new directory")
    parser.add_argument(
        "--only",
        choices=["election", "outage", "fence", "propagation", "transfers", "pods"],
        help="run one part",
    )
    args = parser.parse_args(argv)
    runs, updates, big = (3, 50, 10_000) if args.quick else (20, 500, 100_000)
    results = Results()
    allocator = LoopbackAllocator(61)
    started = time.monotonic()
    with workdir(args.keep) as root, control_plane(root) as cluster:
        if args.only in (None, "election"):
            log("three pods: crash failovers, graceful handovers, switchovers, agent resources")
            with release_of(cluster, root, "election", 3, ZONES, allocator) as release:
                agent_resources(release, results, window=30 if not args.quick else 10)
                switchovers(release, results, runs, crash=True)
                switchovers(release, results, runs, crash=False)
                planned_switchovers(release, results, runs)
                source_edits(release, results, 10)
                ready, rate = switching.ready_under_writes(release, 3 if args.quick else 5)
                results.add(
                    "restart_ready_under_writes_seconds",
                    f"restarted pod -> ready, under ~{rate:.0f} updates/s to the primary",
                    ready,
                )
        if args.only in (None, "outage"):
            outage_part(cluster, root, allocator, results, quick=args.quick)
        if args.only in (None, "fence"):
            fence_part(cluster, root, allocator, results, quick=args.quick)
        for pods in (3, 5) if args.only in (None, "propagation") else ():
            log(f"{pods} pods: propagation of {updates} updates")
            with release_of(cluster, root, f"propagation{pods}", pods, ZONES, allocator) as release:
                propagation(release, results, updates, pods - 1)
        if args.only in (None, "transfers"):
            log(f"two pods: transfers of a {big:,}-record zone")
            with release_of(cluster, root, "transfers", 2, big_zone(big), allocator) as release:
                big_transfers(release, results, big, 3 if args.quick else 5)
    if args.only in (None, "pods"):
        log("real pods: a one-node Kubernetes cluster, the chart, a client pod")
        results.data["pods"] = real_pods(results, 2 if args.quick else 5)
    pins = versions()
    results.data["environment"] = {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "bind": subprocess.run(
            [tool("named"), "-v"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "kubernetes": pins["KUBERNETES_VERSION"],
        "etcd": pins["ETCD_VERSION"],
        "quick": args.quick,
        "lease_duration": 10,
        "renew_deadline": 6,
        "retry_period": 2,
        "duration_seconds": round(time.monotonic() - started),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "quick.json" if args.quick or args.only else "latest.json"
    (RESULTS / name).write_text(json.dumps(results.data, indent=2) + "\n")
    print(results.table())
    log(f"results written to {RESULTS / name}")
    if not args.quick and args.only is None:
        update_readme(results.table())
        log("the table in README.md is updated")
    return 0


def update_readme(table: str) -> None:
    """Replace the measured table in README.md (between its bench-table markers)."""
    readme = REPO / "README.md"
    text = readme.read_text()
    start, end = "<!-- bench-table -->\n", "<!-- /bench-table -->"
    before, rest = text.split(start, 1)
    _old, after = rest.split(end, 1)
    readme.write_text(before + start + table + "\n" + end + after)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
