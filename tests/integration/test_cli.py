"""`bind-ha` against a live local release: real agents, real named, the real API server.

The command runs as it is installed (`make setup` puts it in the venv), as `bind-ha` and as
the kubectl plugin `kubectl bind-ha`. These tests check what the command writes, reads and
reports; tests/integration/test_operating.py what the agents do about each request.
"""

from __future__ import annotations

import base64
import io
import json
import pathlib
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import kubernetes
import pytest

from bind_ha import requests
from bind_ha.cli import clients, main
from bind_ha.clock import SystemClock
from tests.chart.helm import CHART, helm
from tests.harness import dnsclient
from tests.harness.cluster import LocalCluster
from tests.harness.examples import EXAMPLE_ZONES
from tests.harness.named import LoopbackAllocator
from tests.harness.pods import DNS_PORT, UPDATE_KEY, LocalRelease, Timing
from tests.harness.release import wait_for
from tests.harness.tools import path_with_tools, tool
from tests.harness.traffic import Writer
from tests.unit.cli_views import write_kubeconfig


def bind_ha(
    release: LocalRelease, *argv: str, plugin: bool = False, namespace: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed command, as the admin, in the release's namespace."""
    command = [tool("kubectl"), "bind-ha"] if plugin else [tool("bind-ha")]
    return subprocess.run(
        [*command, *argv, "-n", namespace or release.namespace, "--kubeconfig", release.admin_kubeconfig],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        env={"PATH": path_with_tools(), "HOME": str(release.root)},
    )


def status(release: LocalRelease) -> tuple[int, dict[str, object]]:
    result = bind_ha(release, "status", "test", "-o", "json")
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def wait_for_status(
    release: LocalRelease, what: str, condition: Callable[[int, dict[str, object]], bool], timeout: float
) -> tuple[int, dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        release.report_readiness()
        code, document = status(release)
        if condition(code, document):
            return code, document
        assert time.monotonic() < deadline, (
            f"{what} within {timeout}s: {code} {document}\n{release.logs_tail()}"
        )
        time.sleep(0.2)


def lease_requests(release: LocalRelease) -> requests.Requests:
    lease = release.lease()
    assert lease is not None
    return requests.read(lease.metadata.annotations)


def wait_for_renewals(release: LocalRelease, count: int, timeout: float = 30) -> None:
    """The leader renews (writes) the Lease `count` more times."""
    seen = []
    deadline = time.monotonic() + timeout
    while len(seen) <= count:
        lease = release.lease()
        assert lease is not None
        if not seen or lease.spec.renew_time != seen[-1]:
            seen.append(lease.spec.renew_time)
        assert time.monotonic() < deadline, f"the Lease was renewed only {len(seen) - 1} times"
        time.sleep(0.1)


def test_status_of_a_healthy_release(release: LocalRelease) -> None:
    leader, followers = release.start_pods(3)
    release.report_readiness()
    _code, document = wait_for_status(release, "healthy", lambda code, _doc: code == 0, timeout=30)
    assert document["primary"] == leader.name
    pods = {pod["name"]: pod for pod in document["pods"]}  # type: ignore[attr-defined]
    assert pods[leader.name]["role"] == "primary" and pods[leader.name]["holdsLease"] is True
    for pod in followers:
        row = pods[pod.name]
        assert (row["role"], row["ready"], row["agent"], row["inStep"]) == (
            "secondary",
            True,
            "healthy",
            True,
        )
        assert row["ip"] == pod.address
        assert set(row["zones"]) == {"example.test", "dyn.test"}
        assert all(zone["lag"] == 0 for zone in row["zones"].values())
    lease = document["lease"]
    assert lease["holder"] == leader.identity and lease["paused"] is False  # type: ignore[index]
    assert 0 <= lease["renewAgeSeconds"] < release.timing.renew_deadline  # type: ignore[index]

    table = bind_ha(release, "status", plugin=True)  # kubectl finds kubectl-bind_ha on PATH
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith(
        f"Release test in namespace {release.namespace}: HEALTHY: {leader.name} is the primary; "
        "2 ready secondaries in step"
    )
    assert "Automation: running" in table.stdout

    watched = bind_ha(release, "status", "--watch", "--count", "2", "--interval", "0.2")
    assert watched.returncode == 0
    assert watched.stdout.count("Release test in namespace") == 2


def test_status_under_a_stream_of_updates_is_healthy(release: LocalRelease) -> None:
    """Pods publish their serials a round apart, so under writes no two published serials agree:
    status judges a lagging secondary against the primary's serial of a moment before."""
    leader, _followers = release.start_pods(3)
    wait_for_status(release, "healthy", lambda code, _doc: code == 0, timeout=30)
    writer = Writer(lambda: [leader.address], DNS_PORT, "dyn.test", release.update_key(), "stream-", 0.02)
    writer.start()
    try:
        wait_for("a steady stream of updates", lambda: len(writer.acknowledged) >= 100, timeout=60)
        verdicts = []
        for _attempt in range(3):
            release.report_readiness()
            code, document = status(release)
            verdicts.append((code, document["problems"]))
    finally:
        writer.stop()
    assert len(writer.acknowledged) > 150, "the stream ran throughout"
    assert [code for code, _problems in verdicts] == [0, 0, 0], verdicts


@pytest.fixture
def slow_release(
    api_client: kubernetes.client.ApiClient,
    control_plane: LocalCluster,
    tmp_path: pathlib.Path,
    loopback: LoopbackAllocator,
) -> Iterator[LocalRelease]:
    """A release whose Lease outlives its renew deadline by 13 s: the window in which a dead
    primary is visibly dead before another pod takes over."""
    local = LocalRelease(
        api_client=api_client,
        admin_kubeconfig=str(control_plane.kubeconfig),
        namespace=f"it-{uuid.uuid4().hex[:8]}",
        root=tmp_path / "release",
        allocator=loopback,
        timing=Timing(lease_duration=20, renew_deadline=7, retry_period=2),
    )
    local.setup(EXAMPLE_ZONES)
    try:
        yield local
    finally:
        local.stop_all()


def test_status_when_the_primary_is_killed(slow_release: LocalRelease) -> None:
    release = slow_release
    leader, _followers = release.start_pods(3)
    wait_for_status(release, "healthy", lambda code, _doc: code == 0, timeout=30)
    leader.crash()
    _code, document = wait_for_status(release, "unhealthy", lambda code, _doc: code == 1, timeout=20)
    problems = " ".join(document["problems"])  # type: ignore[arg-type]
    assert leader.name in problems
    assert "past its renew deadline" in problems or "expired" in problems, problems
    table = bind_ha(release, "status")
    assert table.returncode == 1
    assert "UNHEALTHY" in table.stdout.splitlines()[0] and "Problems:" in table.stdout

    new = release.wait_for_leader(timeout=60, excluding=leader)
    _code, document = wait_for_status(release, "healthy again", lambda code, _doc: code == 0, timeout=30)
    assert document["primary"] == new.name
    crashed = next(pod for pod in document["pods"] if pod["name"] == leader.name)  # type: ignore[attr-defined]
    assert crashed["ready"] is False and crashed["role"] == "secondary"


def test_pause_is_kept_across_renewals_and_shown(release: LocalRelease) -> None:
    release.start_pods(2)
    paused = bind_ha(release, "pause", "--reason", "upgrade the nodes")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("paused automation of release test (upgrade the nodes); id ")
    wait_for_renewals(release, 2)  # a renewal used to erase every annotation on the Lease
    found = lease_requests(release)
    assert found.pause is not None
    assert (found.pause.by, found.pause.reason) == ("bind-ha-admin", "upgrade the nodes")

    code, document = status(release)
    assert code == 0, "a pause is no fault"
    lease = document["lease"]
    assert lease["paused"] is True and lease["pause"]["reason"] == "upgrade the nodes"  # type: ignore[index]
    table = bind_ha(release, "status").stdout
    assert "Automation: PAUSED" in table and "automation PAUSED by bind-ha-admin" in table

    again = bind_ha(release, "pause")
    assert again.returncode == 0 and "is already paused: by bind-ha-admin" in again.stdout
    resumed = bind_ha(release, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert not lease_requests(release).paused
    assert status(release)[1]["lease"]["paused"] is False  # type: ignore[index]
    events = kubernetes.client.CoreV1Api(release.api_client).list_namespaced_event(release.namespace).items
    reasons = {event.reason for event in events if event.involved_object.kind == "Lease"}
    assert {"PauseRequested", "ResumeRequested"} <= reasons


def test_requests_are_written_refused_and_waited_for(release: LocalRelease) -> None:
    leader, followers = release.start_pods(3)
    release.report_readiness()
    wait_for_status(release, "healthy", lambda code, _doc: code == 0, timeout=30)
    target = followers[0].name

    refused = bind_ha(release, "failover", "--to", target)
    assert refused.returncode == 1
    assert refused.stderr == (
        f"refused: {leader.name} is a healthy primary: use `bind-ha switchover --to {target}` "
        "(it works while automation is paused too)\n"
    )
    assert lease_requests(release).failover is None, "a refused request is not written"
    not_ready = bind_ha(release, "switchover", "--to", "test-bind-ha-9")
    assert not_ready.returncode == 1 and "there is no pod test-bind-ha-9" in not_ready.stderr

    reseed = bind_ha(release, "reseed", "test", "Dyn.Test.", "--wait", "20")
    assert reseed.returncode == 0, reseed.stdout + reseed.stderr
    assert "reseed of dyn.test requested" in reseed.stdout
    assert "reseed done after" in reseed.stdout and f"answered by {leader.name}" in reseed.stdout
    assert "bind-ha.io/reseed" not in (release.lease().metadata.annotations or {})  # type: ignore[union-attr]

    # With every agent gone (the Lease not yet stale), a request is written and nobody answers.
    for pod in release:
        pod.kill_agent()
    started = time.monotonic()
    switchover = bind_ha(release, "switchover", "--to", target, "--wait", "2")
    assert switchover.returncode == 1, switchover.stdout + switchover.stderr
    assert "no answer within 2s" in switchover.stdout
    assert time.monotonic() - started >= 2
    request = lease_requests(release).switchover
    assert request is not None and request.to == target and request.by == "bind-ha-admin"
    assert abs((request.deadline - request.at).total_seconds() - 2) < 0.01
    assert any(f"switchover to {target}" in note for note in status(release)[1]["notes"])  # type: ignore[attr-defined]


def test_usage_and_connection_errors_exit_2(release: LocalRelease) -> None:
    release.start_pods(1)
    missing = bind_ha(release, "status", "nope")
    assert missing.returncode == 2
    assert (
        missing.stderr
        == f"error: no bind-ha release nope in namespace {release.namespace} (releases: test)\n"
    )
    elsewhere = bind_ha(release, "status", namespace="default")
    assert elsewhere.returncode == 2 and "no bind-ha release in namespace default" in elsewhere.stderr
    control = bind_ha(release, "pause", "--reason", "line\x1b[2J")
    assert control.returncode == 2
    assert control.stderr == "error: the request would be malformed: reason contains control characters\n"
    assert not lease_requests(release).paused
    config = bind_ha(release, "client-config", "nsupdate")
    assert config.returncode == 2 and "expected one StatefulSet of release test, found 0" in config.stderr


def key_file_block(text: str) -> str:
    """The shell lines of a printed recipe that write the nsupdate key file."""
    lines = [line.strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.replace(" ", "").startswith("(umask077;"))
    end = next(i for i in range(start, len(lines)) if lines[i].replace(" ", "").endswith(".key)"))
    return "\n".join(lines[start : end + 1])


def test_the_printed_nsupdate_recipes_make_a_key_the_primary_accepts(
    release: LocalRelease, tmp_path: pathlib.Path
) -> None:
    """client-config's and NOTES' key-file lines, run by bash with a kubectl that prints the Secret
    as `kubectl get secret -o jsonpath={.data.update-secret}` would; nsupdate -k then updates the
    real primary."""
    leader, _followers = release.start_pods(2)
    shim = tmp_path / "bin" / "kubectl"
    shim.parent.mkdir()
    encoded = base64.b64encode(release.secret("update-secret").encode()).decode()
    shim.write_text(f"#!/bin/sh\nprintf %s '{encoded}'\n")
    shim.chmod(0o755)
    settings = clients.ClientSettings(
        release="test",
        namespace=release.namespace,
        service="test-bind-ha-primary",
        port=53,
        key_name=UPDATE_KEY,
        algorithm="hmac-sha256",
        secret_name="test-bind-ha-tsig",
    )
    printed = {
        "client-config": clients.recipe("nsupdate", settings, zone="dyn.test"),
        "NOTES": helm(
            "install", "test", str(CHART), "-n", release.namespace, "--dry-run=client",
            "--set", f"tsig.updateKeyName={UPDATE_KEY}",
        ).stdout,
    }  # fmt: skip
    env = {"PATH": f"{shim.parent}:{path_with_tools()}"}
    for source, text in printed.items():
        workdir = tmp_path / source
        workdir.mkdir()
        subprocess.run(["bash", "-c", key_file_block(text)], cwd=workdir, env=env, check=True, timeout=30)
        (keyfile,) = workdir.glob("*.key")
        assert keyfile.stat().st_mode & 0o077 == 0, "the key file is private"
        name = f"{source.lower().replace('-', '')}.dyn.test."
        script = f"server {leader.address} {DNS_PORT}\nzone dyn.test\nupdate add {name} 60 TXT ok\nsend\n"
        result = subprocess.run(
            [tool("nsupdate"), "-k", str(keyfile)],
            check=False,
            input=script,
            text=True,
            capture_output=True,
            env=env,
            timeout=30,
        )
        assert result.returncode == 0, f"{source}: {result.stderr}"
        assert dnsclient.lookup(leader.address, DNS_PORT, name, "TXT") == ['"ok"']


def test_an_unreachable_api_server_exits_2_with_the_reason(tmp_path: pathlib.Path) -> None:
    """Nothing listens on 127.0.0.1:9 in the test's network namespace."""
    config = write_kubeconfig(tmp_path / "config", "https://127.0.0.1:9")
    out, err = io.StringIO(), io.StringIO()
    context = main.Context(env={}, out=out, err=err, clock=SystemClock(), sleep=lambda _s: None)
    code = main.run(["status", "--kubeconfig", str(config), "--request-timeout", "2"], context)
    assert code == 2
    assert err.getvalue().startswith(
        "error: list pods in default: cannot reach the API server at https://127.0.0.1:9"
    )
    assert out.getvalue() == ""
