"""Attacks through what agents read, on real agents, named and the API server (issue 10).

- finding 1: a zone source that includes a TSIG key file is refused, and the key never
  reaches an Event or a log;
- finding 3: a pod whose status annotation is hostile (nested, huge, wrong types) does not
  stop a single election round, and is logged once per agent;
- finding 4: a forged serial published just under 2^31 ahead does not turn the new
  primary's serial lift into a no-op.
"""

from __future__ import annotations

import json
import time

import kubernetes

from tests.harness import dnsclient
from tests.harness.examples import EXAMPLE_ZONES
from tests.harness.pods import DNS_PORT, SELECTOR_LABELS, STATUS_ANNOTATION, LocalRelease

HOSTILE_STATUSES = {
    "nested": '{"healthy": true, "serials": ' + "[" * 60_000 + "]" * 60_000 + "}",
    "huge": json.dumps({"healthy": True, "serials": {f"z{i}.test": i for i in range(8000)}}),
    "infinite": '{"healthy": true, "serials": {"dyn.test": Infinity}}',
    "wrong-types": '{"healthy": "false", "serials": {"dyn.test": 1.5, "EVIL\\n.test": 1}}',
}


def add_api_only_pod(release: LocalRelease, name: str, status: str) -> None:
    """A pod of the release's labels that runs nothing: only its annotation speaks."""
    release.core.create_namespaced_pod(
        release.namespace,
        {
            "metadata": {
                "name": name,
                "labels": dict(SELECTOR_LABELS),
                "annotations": {STATUS_ANNOTATION: status},
            },
            "spec": {
                "schedulingGates": [{"name": "bind-ha.io/local-process"}],
                "automountServiceAccountToken": False,
                "containers": [{"name": "named", "image": "localhost/bind-ha:dev"}],
            },
        },
    )


def events(release: LocalRelease, reason: str) -> list[kubernetes.client.CoreV1Event]:
    items = kubernetes.client.CoreV1Api(release.api_client).list_namespaced_event(release.namespace).items
    return [event for event in items if event.reason == reason]


def test_a_zone_source_including_a_key_is_refused_and_the_key_reaches_no_event_or_log(
    release: LocalRelease,
) -> None:
    """Before: BIND read the key for the agent and echoed its token in the ZoneRejected Event."""
    leader, followers = release.start_pods(2)
    secret = release.secret("update-secret")
    zones = [dict(zone) for zone in EXAMPLE_ZONES]
    key_file = release.tsig_dir / "update-secret"
    zones[0]["records"] = f"ns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n$INCLUDE {key_file} evil.example.org.\n"
    release.write_zones(zones)
    deadline = time.monotonic() + 15
    while len({event.involved_object.name for event in events(release, "ZoneRejected")}) < 2:
        assert time.monotonic() < deadline, f"no ZoneRejected from every pod\n{release.logs_tail()}"
        time.sleep(0.1)
    for event in events(release, "ZoneRejected"):
        assert secret[:8] not in event.message, "the key leaked into the Event"
        assert "$INCLUDE is not allowed" in event.message
    everything = [event.message for event in kubernetes.client.CoreV1Api(release.api_client)
                  .list_namespaced_event(release.namespace).items]  # fmt: skip
    assert not [message for message in everything if secret[:8] in message]
    for pod in (leader, *followers):
        assert secret[:8] not in pod.log_text("agent") and secret[:8] not in pod.log_text("named")
        assert dnsclient.lookup(pod.address, DNS_PORT, "www.example.test") == ["192.0.2.80"], (
            "old data serves"
        )


def test_hostile_status_annotations_stop_no_round_and_the_election_carries_on(release: LocalRelease) -> None:
    """Before: a deeply nested annotation raised RecursionError in every agent's every round: the
    leader stopped renewing and fenced, and no follower could take over."""
    old, _followers = release.start_pods(3)
    for index, (kind, status) in enumerate(HOSTILE_STATUSES.items()):
        add_api_only_pod(release, f"hostile-{index}-{kind}", status)
    # Several lease durations of rounds with the hostile pods listed: the leader keeps renewing.
    lease = release.lease()
    assert lease is not None
    renewed = lease.spec.renew_time
    deadline = time.monotonic() + 2 * release.timing.lease_duration
    while time.monotonic() < deadline:
        assert release.pod_by_identity(release.holder()) is old, "the leader lost the Lease"
        time.sleep(0.2)
    lease = release.lease()
    assert lease is not None and lease.spec.renew_time > renewed
    old.crash()
    new = release.wait_for_leader(timeout=release.timing.lease_duration + 15, excluding=old)
    assert new is not old
    for pod in release:
        log = pod.log_text("agent")
        assert "round failed" not in log, f"{pod.name}:\n{log[-3000:]}"
        for index, kind in enumerate(HOSTILE_STATUSES):
            said = log.count(f"pod hostile-{index}-{kind}: its status annotation counts as none")
            assert said == 1, f"{pod.name} logged the bad status of hostile-{index}-{kind} {said} times"


def test_a_forged_serial_far_ahead_does_not_turn_off_the_serial_lift(release: LocalRelease) -> None:
    """Before: a published serial just under 2^31 ahead made the new primary 'lift' its serial
    to a value BIND ignores (NOERROR, serial unchanged): a forked secondary could then take
    the new primary's updates for its own history."""
    old, _followers = release.start_pods(3)
    before = release.wait_converged("dyn.test")
    forged = {"healthy": True, "serials": {"dyn.test": (before + 2**31 - 1) % 2**32, "example.test": 1}}
    add_api_only_pod(release, "forger", json.dumps(forged))
    old.crash()
    new = release.wait_for_leader(timeout=release.timing.lease_duration + 15, excluding=old)
    after = dnsclient.serial(new.address, DNS_PORT, "dyn.test")
    assert after is not None
    assert 1000 <= (after - before) % 2**32 < 2**31, f"serial {before} -> {after}: not lifted by the margin"
    assert "ignoring published serial(s)" in new.log_text("agent")
    assert not events(release, "PromotionFailed")
