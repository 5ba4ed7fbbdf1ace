"""Candidate eligibility, serial arithmetic and role labels (pure)."""

from __future__ import annotations

import pytest

from bind_ha import peers
from bind_ha.peers import LabelFix, Peer, Status


def peer(
    name: str,
    *,
    role: str | None = None,
    serials: dict[str, int] | None = None,
    healthy: bool = True,
    ip: str | None = "10.0.0.1",
    deleting: bool = False,
) -> Peer:
    status = Status(healthy=healthy, serials=serials or {}) if serials is not None else None
    return Peer(name=name, uid=f"uid-{name}", ip=ip, role=role, status=status, deleting=deleting)


@pytest.mark.parametrize(
    ("a", "b", "newer"),
    [
        (2, 1, True),
        (1, 2, False),
        (5, 5, False),
        (0, 2**32 - 1, True),
        (2**31 + 5, 5, False),
        (2**31 + 4, 5, True),
    ],
)
def test_serial_arithmetic_follows_rfc_1982(a: int, b: int, newer: bool) -> None:
    assert peers.serial_newer(a, b) is newer


def test_serial_addition_wraps_and_skips_zero() -> None:
    assert peers.serial_add(2**32 - 1, 1) == 1
    assert peers.serial_add(10, 1000) == 1010
    with pytest.raises(ValueError, match="out of range"):
        peers.serial_add(1, 2**31)


def test_newest_serial_in_serial_arithmetic() -> None:
    assert peers.newest([5, 2**32 - 2, 3]) == 5
    assert peers.newest([]) is None


def test_status_round_trips_and_a_malformed_annotation_counts_as_none() -> None:
    status = Status(healthy=True, serials={"b.test": 2, "a.test": 1})
    assert Status.from_json(status.to_json()) == status
    assert status.to_json() == '{"healthy":true,"serials":{"a.test":1,"b.test":2}}'
    for broken in ("", "{", '{"serials": {}}', '{"healthy": true, "serials": {"x": "nan"}}', "[]"):
        assert Status.from_json(broken) is None


def test_more_current_is_a_partial_order_over_every_zone() -> None:
    ahead = Status(True, {"a": 5, "b": 3})
    behind = Status(True, {"a": 4, "b": 3})
    mixed = Status(True, {"a": 6, "b": 2})
    assert ahead.more_current_than(behind) and not behind.more_current_than(ahead)
    assert not ahead.more_current_than(mixed) and not mixed.more_current_than(ahead)
    assert ahead.more_current_than(Status(True, {"a": 5}))  # a zone the other lacks
    assert not ahead.more_current_than(ahead)


def test_a_follower_defers_to_a_healthier_more_current_peer_for_at_most_one_lease() -> None:
    mine = Status(True, {"z": 10})
    group = [
        peer("me", serials={"z": 10}),
        peer("best", serials={"z": 12}),
        peer("sick", serials={"z": 20}, healthy=False),
        peer("leaving", serials={"z": 30}, deleting=True),
    ]
    reason = peers.defer_reason(mine, group, "me", acquirable_for=3.0, lease_duration=10)
    assert reason is not None and "best" in reason and "sick" not in reason and "leaving" not in reason
    assert peers.defer_reason(mine, group, "me", acquirable_for=10.0, lease_duration=10) is None
    assert (
        peers.defer_reason(Status(True, {"z": 12}), group, "me", acquirable_for=0, lease_duration=10) is None
    )


def test_an_unhealthy_agent_never_stands() -> None:
    reason = peers.defer_reason(Status(False, {}), [], "me", acquirable_for=100, lease_duration=10)
    assert reason == "this pod's named is not healthy"


def test_a_leader_relabels_other_primaries_before_itself() -> None:
    group = [peer("me", role="secondary"), peer("old", role="primary"), peer("x", role=None)]
    assert peers.label_fixes(group, "me", leading=True) == [
        LabelFix("old", "secondary"),
        LabelFix("me", "primary"),
    ]


def test_a_follower_fixes_only_its_own_label() -> None:
    group = [peer("me", role="primary"), peer("other", role="primary"), peer("new", role=None)]
    assert peers.label_fixes(group, "me", leading=False) == [LabelFix("me", "secondary")]


def test_the_leader_is_found_by_name_and_uid_and_notify_targets_exclude_self() -> None:
    group = [peer("a", ip="10.0.0.1"), peer("b", ip="10.0.0.2"), peer("c", ip=None)]
    assert peers.leader_address(group, "b/uid-b") == "10.0.0.2"
    assert peers.leader_address(group, "b/some-older-uid") is None
    assert peers.notify_targets(group, "a") == ("10.0.0.2",)


def test_a_secondary_keeps_following_a_holder_whose_pod_vanished() -> None:
    """A forced deletion removes the primary's pod object at once, while its named still runs
    and acknowledges the writes kube-proxy sends it for a moment (tests/e2e/test_failover.py
    lost such writes when secondaries stopped transferring from it)."""
    listed = [peer("a", ip="10.0.0.1"), peer("b", ip="10.0.0.2")]
    address, seen = peers.followed_address(listed, "b/uid-b", None)
    assert (address, seen) == ("10.0.0.2", ("b/uid-b", "10.0.0.2"))
    gone = [peer("a", ip="10.0.0.1")]
    assert peers.followed_address(gone, "b/uid-b", seen) == ("10.0.0.2", seen)
    # A new holder, or none, ends it; so does a recreated pod of the same name (a new UID).
    assert peers.followed_address(gone, "a/uid-a", seen) == ("10.0.0.1", ("a/uid-a", "10.0.0.1"))
    assert peers.followed_address(gone, None, seen) == (None, None)
    recreated = [
        peer("a", ip="10.0.0.1"),
        Peer(name="b", uid="uid-new", ip="10.0.0.9", role=None, status=None),
    ]
    assert peers.followed_address(recreated, "b/uid-new", seen) == ("10.0.0.9", ("b/uid-new", "10.0.0.9"))
    assert peers.followed_address(gone, "c/uid-c", None) == (None, None)
