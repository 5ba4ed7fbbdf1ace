"""named's probes, answered over HTTP by the supervisor in the named container
(supervisor.NamedProbes), so a probe costs a DNS query, not a Python start.

- readiness: every zone of the applied config answers SOA with AA, and a
  secondary has caught up with the primary at least once since named (re)started,
  so a pod restarted on old data is not served until that data is current;
- liveness: named answers a query at all (REFUSED counts) within a timeout, so a
  hung named is restarted while a busy one is not.
"""

from __future__ import annotations

import json

from bind_ha import soa
from bind_ha.runstate import RunDir

READY_QUERY_TIMEOUT = 0.5  # named answers its own pod in milliseconds
LIVE_QUERY_TIMEOUT = 1.0
LIVENESS_QUERY_NAME = "."  # any name: named answers REFUSED for what it does not serve


def named_ready(run: RunDir, address: str, port: int, timeout: float = READY_QUERY_TIMEOUT) -> list[str]:
    """Problems that make this pod unready; empty when every zone answers."""
    zones = run.zones()
    if zones is None:
        return ["named.conf not applied yet"]
    problems = []
    for zone in zones:
        answer = soa.ask(zone.name, address, port, timeout)
        if not answer.answered:  # named does not answer at all: one timeout, not one per zone
            return [f"{answer.problem}; named does not answer"]
        if answer.problem is not None:
            problems.append(answer.problem)
        elif not zone.synced:
            problems.append(f"{zone.name}: not yet in step with the primary since start")
    return problems


def named_alive(address: str, port: int, timeout: float = LIVE_QUERY_TIMEOUT) -> tuple[bool, str]:
    """named answers a query within timeout (any answer: a hung named gives none)."""
    answer = soa.ask(LIVENESS_QUERY_NAME, address, port, timeout)
    if answer.answered:
        return True, "named answers queries"
    return False, f"named gave no answer within {timeout:g}s"


def zones_document(run: RunDir) -> str:
    """The zones of the applied config as JSON: what the `helm test` pod checks."""
    zones = run.zones()
    entries = [{"name": zone.name, "dynamic": zone.dynamic} for zone in zones or []]
    return json.dumps({"applied": zones is not None, "zones": entries})
