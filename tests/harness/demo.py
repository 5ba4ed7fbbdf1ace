"""`make demo`: the chart on real pods (tests/harness/realdemo.py), or where a node cannot
start here, three pods' worth of agent + named as local processes that elect a primary,
then fail over.

The process demo runs everything locally inside a private network namespace
(.ci/isolated): a real control plane on 127.0.0.1, and per pod the init hook, the
named supervisor (running BIND) and the agent, exactly as the chart's pods run them.

    python -m tests.harness.demo [--processes]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import threading
import time
from pathlib import Path

import kubernetes

from tests.harness import dnsclient, realdemo
from tests.harness.cluster import LocalCluster, Ports
from tests.harness.examples import EXAMPLE_ZONES, REVERSE_ZONE
from tests.harness.named import LoopbackAllocator
from tests.harness.pods import DNS_PORT, UPDATE_KEY, LocalPod, LocalRelease

ZONES = [*EXAMPLE_ZONES, REVERSE_ZONE]


def say(text: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    print(f"[{stamp}] {text}", flush=True)


def table(release: LocalRelease) -> None:
    print(
        f"    {'pod':<16} {'address':<14} {'role label':<11} {'role file':<10} "
        f"{'example.test':>12} {'dyn.test':>16}  www.example.test"
    )
    for pod in release:
        alive = pod.agent_alive()
        label = pod.role_label() if alive else "-"
        role = pod.role_file() if alive else "(crashed)"
        serials = [dnsclient.serial(pod.address, DNS_PORT, zone) for zone in ("example.test", "dyn.test")]
        www = dnsclient.lookup(pod.address, DNS_PORT, "www.example.test")
        print(
            f"    {pod.name:<16} {pod.address:<14} {label or '-':<11} {role or '-':<10} "
            f"{serials[0] or '-':>12} {serials[1] or '-':>16}  {','.join(www) or 'no answer'}"
        )


def wait_caught_up(release: LocalRelease, leader: LocalPod, zone: str, timeout: float = 15) -> None:
    want = dnsclient.serial(leader.address, DNS_PORT, zone)
    deadline = time.monotonic() + timeout
    while any(dnsclient.serial(pod.address, DNS_PORT, zone) != want for pod in release if pod.agent_alive()):
        if time.monotonic() > deadline:
            return
        time.sleep(0.05)


def run(root: Path) -> None:
    say("starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler) on 127.0.0.1")
    cluster = LocalCluster(root / "control-plane", Ports.free(), root / "kubeconfig")
    (root / "control-plane").mkdir()
    cluster.up()
    release: LocalRelease | None = None
    try:
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
        release = LocalRelease(
            api_client=api,
            admin_kubeconfig=str(cluster.kubeconfig),
            namespace="demo",
            root=root / "release",
            allocator=LoopbackAllocator(42),
        )
        release.setup(ZONES)
        say("three pods: each runs init, then named (under its supervisor) and the agent")
        pods = release.add_pods(3)
        for pod in pods:
            pod.start()
        leader = release.wait_for_leader()
        release.wait_for_agents()
        say(f"elected: {leader.name} holds Lease demo/{release.lease().metadata.name} and is primary")
        key = (UPDATE_KEY, release.secret("update-secret"))
        follower = next(pod for pod in pods if pod is not leader)
        rcode = dnsclient.update(follower.address, DNS_PORT, "dyn.test", add={"app": "192.0.2.10"}, key=key)
        say(f"signed update of app.dyn.test sent to secondary {follower.name}: {rcode} (forwarded)")
        wait_caught_up(release, leader, "dyn.test")
        table(release)

        say(f"crashing {leader.name}: SIGKILL to its agent, its supervisor and named")
        crashed_at = time.monotonic()
        leader.crash()
        new = release.wait_for_leader(excluding=leader, timeout=60)
        promoted_at = time.monotonic()
        while (
            dnsclient.update(
                new.address, DNS_PORT, "dyn.test", add={"after": "192.0.2.11"}, key=key, timeout=1
            )
            != "NOERROR"
        ):
            time.sleep(0.05)
        accepting_at = time.monotonic()
        say(
            f"new primary: {new.name}, promoted {promoted_at - crashed_at:.2f}s after the crash, "
            f"accepting signed updates after {accepting_at - crashed_at:.2f}s "
            f"(lease duration {release.timing.lease_duration:g}s)"
        )
        wait_caught_up(release, new, "dyn.test")
        table(release)

        say(f"graceful handover: SIGTERM to {new.name}'s named and agent, as a pod deletion would")
        signalled = time.monotonic()
        stopping = threading.Thread(target=new.stop)  # the old pod's exit is not what we time
        stopping.start()
        third = release.wait_for_leader(excluding=new, timeout=30)
        say(
            f"new primary: {third.name} after {time.monotonic() - signalled:.2f}s (the Lease was released, "
            "not left to expire)"
        )
        stopping.join()
        say("every surviving pod kept answering queries throughout; writes moved with the Lease")
    finally:
        if release is not None:
            release.stop_all()
        cluster.down()
        say("stopped every process the demo started")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", action="store_true", help="run the process demo, not the real pods")
    args = parser.parse_args(argv)
    if not args.processes:
        try:
            realdemo.main()
            return 0
        except realdemo.NodeUnavailable as error:
            say(f"a real node cannot run here: {error}")
            say("falling back to the process demo: the chart's containers as local processes")
    with tempfile.TemporaryDirectory(prefix="bind-ha-demo-") as scratch:
        run(Path(scratch))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
