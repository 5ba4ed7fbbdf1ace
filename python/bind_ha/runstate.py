"""Files shared by the containers of one pod, in the run directory (an emptyDir).

- role: "primary" or "secondary", what this pod's BIND is configured as.
- primary-valid-until: CLOCK_MONOTONIC seconds (shared by all containers on a
  node) until which the agent has confirmed leadership; the named supervisor
  freezes dynamic zones once it passes. "0" when not leading.
- zones.json: the zones of the applied named.conf (for probes and the fence).
- named-stopping: written by the named supervisor on SIGTERM, so the agent
  releases the Lease at once instead of waiting for its own SIGTERM.
- lease-released: written by the agent once its peers have every write and the
  Lease is handed over; a primary's supervisor waits for it before stopping named.
- layout.json: the agent's record of named's views (layout.py), so that an agent
  restarted beside a running named knows what named runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from bind_ha.peers import ROLES, SECONDARY

ROLE = "role"
VALID_UNTIL = "primary-valid-until"
ZONES = "zones.json"
STOPPING = "named-stopping"
RELEASED = "lease-released"
NAMED_CONF = "named.conf"
LAYOUT = "layout.json"
WAS_PRIMARY = "was-primary"  # in the data directory: this pod's data may hold unreplicated history


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_text(text)
    os.replace(scratch, path)


@dataclass(frozen=True)
class AppliedZone:
    name: str
    dynamic: bool
    synced: bool = False  # served data has caught up with the primary since named (re)started


@dataclass(frozen=True)
class RunDir:
    path: Path

    def role(self) -> str:
        try:
            role = (self.path / ROLE).read_text().strip()
        except FileNotFoundError:
            return SECONDARY
        return role if role in ROLES else SECONDARY

    def set_role(self, role: str) -> None:
        atomic_write(self.path / ROLE, role + "\n")

    def valid_until(self) -> float:
        try:
            return float((self.path / VALID_UNTIL).read_text())
        except (FileNotFoundError, ValueError):
            return 0.0

    def set_valid_until(self, monotonic_deadline: float) -> None:
        atomic_write(self.path / VALID_UNTIL, f"{monotonic_deadline:.3f}\n")

    def zones(self) -> list[AppliedZone] | None:
        """The applied config's zones; None before any config was applied."""
        try:
            entries = json.loads((self.path / ZONES).read_text())
        except (FileNotFoundError, ValueError):
            return None
        return [
            AppliedZone(str(entry["name"]), bool(entry["dynamic"]), bool(entry.get("synced")))
            for entry in entries
        ]

    def set_zones(self, zones: list[AppliedZone]) -> None:
        entries = [{"name": z.name, "dynamic": z.dynamic, "synced": z.synced} for z in zones]
        atomic_write(self.path / ZONES, json.dumps(entries))

    def unsync(self) -> None:
        """named is (re)starting: whatever it loads from disk may be old."""
        zones = self.zones()
        if zones is not None:
            self.set_zones([AppliedZone(z.name, z.dynamic, False) for z in zones])

    def layout(self) -> dict[str, str | None] | None:
        """The recorded layout (serving, role, staged), or None if there is none or it is unreadable."""
        try:
            data = json.loads((self.path / LAYOUT).read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("serving", "role")):
            return None
        staged = data.get("staged")
        return {
            "serving": data["serving"],
            "role": data["role"],
            "staged": staged if isinstance(staged, str) else None,
        }

    def set_layout(self, serving: str, role: str, staged: str | None) -> None:
        atomic_write(self.path / LAYOUT, json.dumps({"serving": serving, "role": role, "staged": staged}))

    @property
    def named_conf(self) -> Path:
        return self.path / NAMED_CONF

    def stopping(self) -> bool:
        return (self.path / STOPPING).exists()

    def mark_stopping(self) -> None:
        atomic_write(self.path / STOPPING, "named is stopping\n")

    def released(self) -> bool:
        return (self.path / RELEASED).exists()

    def mark_released(self) -> None:
        """The agent handed the Lease over after its peers caught up: named may stop now."""
        atomic_write(self.path / RELEASED, "lease released\n")

    def clear_markers(self, *names: str) -> None:
        for name in names or (STOPPING, RELEASED):
            (self.path / name).unlink(missing_ok=True)
