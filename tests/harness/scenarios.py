"""A release under client load, as the e2e scenarios, `make demo` and `make bench` drive it.

`Scenario.install` puts a release (a static and a dynamic zone) in a new restricted
namespace with a client pod beside it; `Scenario.load` runs tests/harness/podload.py in
that pod: lookups through the DNS Service, signed updates through the primary Service.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import yaml

from tests.harness.release import (
    ClientPod,
    Kube,
    LoadRun,
    LoadSummary,
    Release,
    Workload,
    missing_updates,
    wait_for,
)

STATIC = "example.com"
DYNAMIC = "dyn.example.com"
WWW = "192.0.2.80"
LEASE_DURATION = 10  # the chart's default election.leaseDurationSeconds


def zones(extra_static: str = "") -> list[dict[str, Any]]:
    """A static zone (extra_static: more of its records) and a dynamic one."""
    return [
        {
            "name": STATIC,
            "nameservers": [f"ns1.{STATIC}."],
            "records": f"ns1 IN A 192.0.2.53\nwww IN A {WWW}\n{extra_static}",
        },
        {"name": DYNAMIC, "type": "dynamic", "ttl": 60, "nameservers": [f"ns1.{STATIC}."]},
    ]


QUERIES = (
    {"name": f"www.{STATIC}", "type": "A", "expect": [WWW]},
    {"name": STATIC, "type": "SOA"},
    {"name": DYNAMIC, "type": "SOA"},
)


def values_file(values: dict[str, Any]) -> str:
    """values written to a file helm reads (kept until the process ends)."""
    with tempfile.NamedTemporaryFile("w", prefix="bind-ha-values-", suffix=".yaml", delete=False) as handle:
        yaml.safe_dump(values, handle)
    return handle.name


@dataclass
class Scenario:
    """A release, a client pod in its namespace, and what the load sends."""

    release: Release
    client: ClientPod
    workload: Workload

    @classmethod
    def install(
        cls,
        kube: Kube,
        image: str,
        *,
        prefix: str,
        values: dict[str, Any] | None = None,
        options: Sequence[str] = (),
        timeout: float = 300,
    ) -> Scenario:
        """Install (values: overrides of the scenario's zones) and wait until every pod is
        Ready, one is primary and both Services answer the client pod."""
        namespace = kube.restricted_namespace(prefix)
        release = Release(kube, namespace)
        release.install(values_file({"zones": zones(), **(values or {})}), options=options)
        client = ClientPod(kube, namespace, image).start()
        release.wait_all_ready(timeout=timeout)
        release.wait_one_primary(timeout=timeout)
        workload = Workload(
            dns_server=release.service_ip("dns"),
            update_server=release.service_ip("primary"),
            zone=DYNAMIC,
            key_name="bind-ha-update",
            key_secret=release.update_secret(),
            queries=QUERIES,
        )
        scenario = cls(release, client, workload)
        scenario.wait_services()
        return scenario

    def wait_services(self, timeout: float = 120) -> None:
        """Ready pods are not yet reachable: kube-proxy programs a Service once it sees them."""
        for service in ("dns", "primary"):
            address = self.release.service_ip(service)
            wait_for(
                f"the {service} Service to answer",
                lambda a=address: self.client.dig(a, STATIC).status == "NOERROR",  # type: ignore[misc]
                timeout,
            )

    @contextmanager
    def load(self, tag: str, *, warm_up: float = 3.0) -> Iterator[LoadRun]:
        """Load running for the body of the with-block (after `warm_up` seconds of it); stop()
        it inside for the summary. It is killed if the body fails."""
        run = LoadRun(self.client, self.workload.config(tag))
        try:
            time.sleep(warm_up)
            yield run
        finally:
            run.kill()

    def lost(self, summary: LoadSummary, tag: str, timeout: float = 60) -> dict[str, list[str] | str]:
        """Acknowledged updates some pod does not serve, by pod (empty: none lost)."""
        return self.lost_names(summary.acknowledged, tag, timeout)

    def lost_names(self, names: Sequence[str], tag: str, timeout: float = 60) -> dict[str, list[str] | str]:
        """Of `names` (labels TAG-N in the dynamic zone), those some pod does not serve, by pod,
        once every pod serves them all or `timeout` ran out."""
        return missing_updates(self.client, self.release, self.workload, names, tag, timeout)

    def delete(self) -> None:
        self.release.kube.delete_namespace(self.release.namespace)


def settle(seconds: float) -> None:
    """Keep the load running a while after the system recovered, so the summary covers it."""
    time.sleep(seconds)


# ---- switches of the primary under load: what the tests assert on, the demo prints and the
# ---- bench measures ------------------------------------------------------------------------


@dataclass(frozen=True)
class Switch:
    """One disruption under load, as the client pod saw it."""

    kind: str
    old: str  # the primary before
    new: str  # the primary after (may be the same name: a restarted or recreated pod)
    at: float  # wall-clock time of the disruption
    primary_after: float  # graceful: seconds until another pod was labelled primary; else done_after
    done_after: float  # seconds until every pod was Ready again (replaced, where it was)
    summary: LoadSummary
    lost: dict[str, list[str] | str]

    @property
    def outage(self) -> float:
        """The write outage through the primary Service that the disruption caused."""
        return self.summary.outage_after(self.at)

    @property
    def writable_after(self) -> float:
        """Seconds from the disruption until the primary Service took updates again."""
        return self.summary.writable_after(self.at)

    @property
    def lost_count(self) -> int:
        return max((len(names) for names in self.lost.values()), default=0)


def graceful(scenario: Scenario, tag: str, *, timeout: float = 300, settle_for: float = 3) -> Switch:
    """`kubectl delete pod` of the primary; done once its replacement is Ready."""
    release = scenario.release
    old = release.wait_one_primary()
    old_uid = release.uid(old)
    with scenario.load(tag) as load:
        at = time.time()
        release.delete_pod(old)
        new = release.wait_new_primary(old, timeout=timeout)
        seen = time.time() - at
        release.wait_all_ready(gone=[old_uid], timeout=timeout)
        done = time.time() - at
        settle(settle_for)
        summary = load.stop()
    return Switch("graceful", old, new, at, seen, done, summary, scenario.lost(summary, tag))


def crash(
    scenario: Scenario,
    kill: Callable[[str], None] | None,
    tag: str,
    *,
    timeout: float = 300,
    settle_for: float = 3,
    lost_timeout: float = 30,
) -> Switch:
    """The primary's named and agent containers SIGKILLed (kill: one container ID), or with
    kill None the pod force-deleted; done once every pod is Ready again."""
    release = scenario.release
    old = release.wait_one_primary()
    old_uid = release.uid(old)
    restarts = release.restarts(old)
    with scenario.load(tag) as load:
        at = time.time()
        if kill is not None:
            for container in release.container_ids(old, ["named", "agent"]).values():
                kill(container)
            # The pod keeps its name and UID: the kubelet restarts its containers, and its
            # agent may take the Lease back with the same identity.
            wait_for("the kubelet to restart the killed containers", lambda: release.restarts(old) > restarts)
            gone = []
        else:
            release.delete_pod(old, force=True)
            gone = [old_uid]  # the StatefulSet makes a new pod of the same name
        release.wait_all_ready(gone=gone, timeout=timeout)
        new = release.wait_one_primary(timeout=timeout)
        done = time.time() - at
        settle(settle_for)
        summary = load.stop()
    kind = "crash: SIGKILL" if kill is not None else "crash: forced delete"
    lost = scenario.lost(summary, tag, timeout=lost_timeout)
    return Switch(kind, old, new, at, done, done, summary, lost)


def roll(
    scenario: Scenario, change: Callable[[], None], tag: str, *, timeout: float = 600, settle_for: float = 2
) -> Switch:
    """A change that rolls every pod (helm upgrade or rollback) under load; done once every
    pod was replaced and is Ready."""
    release = scenario.release
    old = release.wait_one_primary()
    uids = [pod["metadata"]["uid"] for pod in release.pods()]
    with scenario.load(tag) as load:
        at = time.time()
        change()
        release.kube.kubectl(
            "-n",
            release.namespace,
            "rollout",
            "status",
            f"statefulset/{release.fullname}",
            f"--timeout={timeout:g}s",
            timeout=timeout + 60,
        )
        release.wait_all_ready(gone=uids, timeout=timeout)
        new = release.wait_one_primary(timeout=timeout)
        done = time.time() - at
        settle(settle_for)
        summary = load.stop()
    return Switch("rolling update", old, new, at, done, done, summary, scenario.lost(summary, tag))
