"""`make demo` on real pods: a one-node Kubernetes cluster (tests/harness/node.py) runs the
chart; a client pod queries through the DNS Service and updates through the primary Service
while the primary crashes, is deleted, and the release is upgraded. Each switch is timed as
that client saw it. Everything stops at the end (the node and every pod with it).

tests/harness/demo.py runs this, and falls back to its process demo when the node cannot
start here (the reason is printed).
"""

from __future__ import annotations

import datetime
import subprocess
import time

from tests.harness import processes
from tests.harness.node import Node, bind_ha_image
from tests.harness.release import Kube, LoadSummary
from tests.harness.scenarios import (
    DYNAMIC,
    STATIC,
    Scenario,
    Switch,
    crash,
    graceful,
    roll,
    values_file,
    zones,
)
from tests.harness.tools import REPO


class NodeUnavailable(Exception):
    """The real cluster cannot run here; the message says why."""


def say(text: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    print(f"[{stamp}] {text}", flush=True)


def image_problem() -> str | None:
    """Why the image cannot be used (None: it is current). `make demo` builds it first."""
    check = subprocess.run(
        [str(REPO / ".ci" / "buildah.sh"), "check"], capture_output=True, text=True, check=False
    )
    return None if check.returncode == 0 else (check.stderr or check.stdout).strip()


def start_node() -> Node:
    problem = image_problem()
    if problem is not None:
        raise NodeUnavailable(f"the image is not built or not current ({problem})")
    node = Node(host_port=processes.free_port(), log=say)
    try:
        node.up()
    except processes.StartupError as error:
        raise NodeUnavailable(str(error)) from None
    return node


def show_pods(scenario: Scenario) -> None:
    release = scenario.release
    listing = release.kube.kubectl(
        "-n", release.namespace, "get", "pods", "-l", release.selector, "-L", "bind-ha.io/role"
    )
    print("    $ kubectl get pods -L bind-ha.io/role")
    for line in listing.stdout.rstrip().splitlines():
        print(f"    {line}")


def answer_through_the_services(scenario: Scenario) -> None:
    client, workload = scenario.client, scenario.workload
    dns_ip, primary_ip = workload.dns_server, workload.update_server
    www = client.dig(dns_ip, f"www.{STATIC}", "A")
    flags = " ".join(sorted(www.flags))
    say(f"dig @{dns_ip} (the DNS Service) www.{STATIC} A -> {www.status} [{flags}] {', '.join(www.answers)}")
    key = f"hmac-sha256:{workload.key_name}:{workload.key_secret}"
    name = f"hello.{DYNAMIC}."
    client.nsupdate(primary_ip, [f"zone {DYNAMIC}", f'update add {name} 60 TXT "from the demo"'], key=key)
    say(f"nsupdate through {primary_ip} (the primary Service), signed: add {name} TXT -> NOERROR")
    deadline = time.monotonic() + 30
    while (read := client.dig(dns_ip, name, "TXT")).answers != (
        '"from the demo"',
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    say(f"dig @{dns_ip} {name} TXT -> {read.status} {', '.join(read.answers)} (answered by any pod)")


def lookups(summary: LoadSummary) -> str:
    q = summary.queries
    return (
        f"{q['sent']} lookups through the DNS Service ({summary.query_rate:.0f}/s), {q['failed']} failed"
        f" ({q['attempt_failures']} retried)"
    )


def report(switch: Switch) -> None:
    same = ""
    if switch.new == switch.old and switch.kind == "rolling update":
        same = " (a new pod of that name: the role moved as the rollout replaced the pods, and ended there)"
    elif switch.new == switch.old:
        same = " (the same pod: restarted, it kept its identity and its Lease)"
    say(f"primary: {switch.old} -> {switch.new}{same}")
    say(
        f"writes through the primary Service were out for {switch.outage:.2f}s; "
        f"{lookups(switch.summary)}; acknowledged updates lost: {switch.lost_count} "
        f"of {len(switch.summary.acknowledged)}"
    )


def run(node: Node) -> list[tuple[str, float, Switch]]:
    kube = Kube(str(node.host_kubeconfig))
    say(
        f"node Ready after {node.timings['node Ready']:.1f}s, "
        f"CoreDNS answering after {node.timings['total']:.1f}s"
    )
    say("helm install dns ./chart: three pods, a static zone and a dynamic zone, a client pod beside them")
    started = time.monotonic()
    scenario = Scenario.install(kube, bind_ha_image(), prefix="demo")
    try:
        return _story(node, scenario, started)
    finally:
        scenario.delete()  # in the background; on the demo's own node, stopping it removes all


def _story(node: Node, scenario: Scenario, started: float) -> list[tuple[str, float, Switch]]:
    say(f"every pod Ready with one primary {time.monotonic() - started:.1f}s after helm install")
    show_pods(scenario)
    answer_through_the_services(scenario)
    switches = []

    say("crash: SIGKILL to the primary's named and agent containers (through containerd), under load")
    switch = crash(scenario, node.kill_container, "democrash")
    say(
        f"the primary Service took updates again {switch.writable_after:.2f}s after the crash "
        "(lease duration 10s)"
    )
    report(switch)
    switches.append(("crash (SIGKILL): primary Service writable again after", switch.writable_after, switch))
    show_pods(scenario)

    say(f"graceful: kubectl delete pod {scenario.release.wait_one_primary()} (the primary), under load")
    switch = graceful(scenario, "demodelete")
    say(f"another pod was labelled primary {switch.primary_after:.2f}s after the delete command")
    report(switch)
    switches.append(("graceful delete: write outage through the primary Service", switch.outage, switch))
    show_pods(scenario)

    say(
        "helm upgrade with a new pod annotation: the StatefulSet replaces every pod, "
        "one at a time, under load"
    )
    values = values_file({"zones": zones(), "podAnnotations": {"demo.bind-ha.io/revision": "2"}})
    switch = roll(scenario, lambda: scenario.release.upgrade(values), "demoupgrade")
    say(
        f"rollout complete after {switch.done_after:.1f}s; "
        f"longest write gap {switch.summary.write_outage:.2f}s"
    )
    report(switch)
    switches.append(
        ("helm upgrade: longest write gap while every pod rolled", switch.summary.write_outage, switch)
    )
    show_pods(scenario)

    say("the switches, as the client pod saw them:")
    for label, seconds, each in switches:
        print(f"    {seconds:6.2f}s  {label}; {each.summary.failed_queries} failed lookups")
    return switches


def main() -> None:
    """Start the node (NodeUnavailable when it cannot), run the demo, stop everything."""
    say("starting a one-node Kubernetes v1.36 cluster in a network namespace of its own")
    node = start_node()
    try:
        run(node)
    finally:
        node.down()
        say("stopped the node and every process and pod it ran")
