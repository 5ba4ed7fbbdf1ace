"""named's readiness: every zone of the applied config answers SOA with AA, and a
secondary has caught up with the primary at least once since it (re)started, so a
pod restarted on old data is not served until that data is current."""

from __future__ import annotations

from bind_ha import soa
from bind_ha.runstate import RunDir
from bind_ha.startup import load_settings


def named_ready(run: RunDir, address: str, port: int, timeout: float = 1.0) -> list[str]:
    """Problems that make this pod unready; empty when every zone answers."""
    zones = run.zones()
    if zones is None:
        return ["named.conf not applied yet"]
    problems = []
    for zone in zones:
        answer = soa.ask(zone.name, address, port, timeout)
        if answer.problem is not None:
            problems.append(answer.problem)
        elif not zone.synced:
            problems.append(f"{zone.name}: not yet in step with the primary since start")
    return problems


def main() -> int:
    """The named container's readiness probe: exit 0 when every zone answers."""
    settings = load_settings("probe")
    if settings is None:
        return 2
    problems = named_ready(RunDir(settings.run_dir), settings.local_dns_address, settings.dns_port)
    if problems:
        print("not ready: " + "; ".join(problems))
        return 1
    print("ready")
    return 0
