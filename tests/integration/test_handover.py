"""Graceful handover, in the kubelet's order: no acknowledged update is lost, and it is quick."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

from tests.harness import dnsclient
from tests.harness.examples import EXAMPLE_ZONES, big_zone
from tests.harness.pods import DNS_PORT, LocalPod, LocalRelease
from tests.harness.release import wait_for
from tests.harness.tools import tool
from tests.harness.traffic import Writer
from tests.integration.test_failover import accepted_within
from tests.integration.test_zone_data import identical_everywhere, names_in


def stopping(pod: LocalPod) -> threading.Thread:
    """Stop pod as the kubelet does (named's container first, then the agent), in the background."""
    thread = threading.Thread(target=pod.stop, daemon=True)
    thread.start()
    return thread


def test_a_graceful_handover_in_the_kubelets_order_is_quick_and_loses_nothing(release: LocalRelease) -> None:
    old, survivors = release.start_pods(3)
    writer = Writer(
        lambda: [pod.address for pod in survivors], DNS_PORT, "dyn.test", release.update_key(), "graceful"
    )
    writer.start()
    try:
        wait_for("writes flowing", lambda: len(writer.acknowledged) >= 20, 30)
        signalled = time.monotonic()
        stopper = stopping(old)  # SIGTERM to named's supervisor, which tells the agent; then the agent
        new = release.wait_for_leader(excluding=old, timeout=15)
        accepted_at = accepted_within(release, new, "after-graceful", "192.0.2.40", timeout=15)
        stopper.join()
        after = len(writer.acknowledged)
        wait_for("writes flowing after the handover", lambda: len(writer.acknowledged) >= after + 20, 30)
    finally:
        writer.stop()
    took = accepted_at - signalled
    print(f"graceful handover: new primary accepts an update {took:.3f}s after SIGTERM")
    assert took < release.timing.lease_duration / 2, (
        f"{took:.2f}s: as slow as waiting for the Lease to expire"
    )
    present = names_in(identical_everywhere(release, "dyn.test", survivors))
    lost = [name for name in writer.acknowledged if name not in present]
    assert len(writer.acknowledged) > 50 and lost == []


def test_a_stopping_primary_waits_for_a_secondary_in_the_middle_of_a_100k_record_transfer(
    release: LocalRelease,
) -> None:
    """The only peer is re-transferring a 100,000-record zone, and paused for longer than the
    old fixed 3 s wait. The primary must keep the Lease (taking no writes) until that peer has
    every acknowledged update, within the grace period, and hand over only then."""
    release.write_zones([*EXAMPLE_ZONES, big_zone("big.test", 100_000)])
    primary, (peer,) = release.start_pods(2, zones=("example.test", "dyn.test"))
    release.wait_converged("big.test", timeout=180)
    assert peer.named_pid
    writer = Writer(lambda: [primary.address], DNS_PORT, "dyn.test", release.update_key(), "busy", pause=0.01)
    writer.start()
    wait_for("writes flowing", lambda: len(writer.acknowledged) >= 20, 30)
    view = peer.serving_view()
    subprocess.run(
        [tool("rndc"), "-c", str(peer.run_dir / "rndc.conf"), "retransfer", "big.test", "IN", view],
        check=True,
    )
    os.kill(peer.named_pid, signal.SIGSTOP)  # mid-transfer, and deaf to the primary's NOTIFYs
    try:
        time.sleep(1)  # updates the peer misses
        signalled = time.monotonic()
        stopper = stopping(primary)
        time.sleep(4)  # longer than any fixed wait the primary could have used
        assert primary.role_file() == "primary" and release.holder() == primary.identity
        writer.halt.set()
    finally:
        os.kill(peer.named_pid, signal.SIGCONT)
    writer.join()
    new = release.wait_for_leader(excluding=primary, timeout=release.timing.termination_grace)
    assert new is peer
    stopper.join()
    took = time.monotonic() - signalled
    assert took < release.timing.termination_grace, f"{took:.1f}s"
    present = names_in(release.contents(peer, "dyn.test"))
    lost = [name for name in writer.acknowledged if name not in present]
    print(f"{len(writer.acknowledged)} acknowledged, {len(lost)} lost; handed over after {took:.1f}s")
    assert len(writer.acknowledged) > 50 and lost == []
    assert "serves our last serials" in primary.log_text("agent")
    assert dnsclient.serial(peer.address, DNS_PORT, "big.test") is not None
