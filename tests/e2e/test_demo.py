"""`make demo`'s story (tests/harness/realdemo.py) on the session's node: the steps the README
shows run, and each switch keeps the promises the demo prints. The node's own start and stop
are tests/e2e/test_cluster_commands.py's."""

from __future__ import annotations

import pytest

from tests.harness import realdemo
from tests.harness.node import Node
from tests.harness.scenarios import LEASE_DURATION

CRASH_WRITABLE_BOUND = LEASE_DURATION + 20.0  # generous: a loaded 2-core machine


def test_the_demo_crashes_deletes_and_upgrades_without_losing_a_lookup(
    node: Node, image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    switches = realdemo.run(node)
    printed = capsys.readouterr().out
    kinds = [switch.kind for _label, _seconds, switch in switches]
    assert kinds == ["crash: SIGKILL", "graceful", "rolling update"], kinds
    crash, delete, upgrade = (switch for _label, _seconds, switch in switches)
    assert 0 < crash.writable_after < CRASH_WRITABLE_BOUND, crash.summary.describe()
    for switch in (delete, upgrade):
        assert switch.summary.failed_queries == 0, switch.summary.describe()
        assert switch.lost_count == 0, switch.summary.describe()
    assert delete.new != delete.old
    for line in ("kubectl get pods -L bind-ha.io/role", "the switches, as the client pod saw them:"):
        assert line in printed, printed[-3000:]
    assert "-> NOERROR" in printed and "from the demo" in printed, printed[:3000]
