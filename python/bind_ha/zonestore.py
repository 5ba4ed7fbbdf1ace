"""Zone files on this pod's volume, one directory per named view.

    DATA/serving-view         "blue" or "green": the view whose files named serves
    DATA/zones/blue/NAME.db   (+ NAME.db.jnl, the journal of a dynamic or transferred zone)
    DATA/zones/green/NAME.db

A role switch prepares the zones in the other directory (render.py explains why),
then records it as the serving one *before* named switches to it: whatever happens
in between, the directory named says it serves is complete. The other directory
is emptied before each switch.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from bind_ha.render import BLUE, VIEWS, zone_directory
from bind_ha.runstate import atomic_write

log = logging.getLogger("bind_ha.zonestore")
SERVING_VIEW = "serving-view"


def journal_of(zone_file: Path) -> Path:
    return zone_file.with_name(zone_file.name + ".jnl")


@dataclass(frozen=True)
class ZoneStore:
    data_dir: Path

    def serving(self) -> str:
        """The view recorded as serving (BLUE when none is, or the record is unreadable)."""
        try:
            name = (self.data_dir / SERVING_VIEW).read_text().strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return BLUE
        return name if name in VIEWS else BLUE

    def set_serving(self, view: str) -> None:
        if view not in VIEWS:
            raise ValueError(f"no such view: {view!r}")
        atomic_write(self.data_dir / SERVING_VIEW, view + "\n")

    def directory(self, view: str) -> Path:
        return self.data_dir / zone_directory(view)

    def file(self, view: str, file_name: str) -> Path:
        return self.directory(view) / file_name

    def has_data(self, view: str, file_name: str) -> bool:
        """Whether the view's directory holds this zone's file (written by a transfer, a seed or
        a copy; named writes a transferred zone only once the transfer completed)."""
        return self.file(view, file_name).is_file()

    def empty(self, view: str) -> None:
        """Remove every file of view (not the serving one) and leave its directory empty."""
        if view == self.serving():
            raise ValueError(f"refusing to empty the serving view {view}")
        shutil.rmtree(self.directory(view), ignore_errors=True)
        self.directory(view).mkdir(parents=True, exist_ok=True)

    def copy(self, file_name: str, source: str, target: str) -> bool:
        """Copy a zone's file and journal from one view's directory to another's; False when the
        source has no file. named replays the journal on top of the file when it loads."""
        origin = self.file(source, file_name)
        if not origin.is_file():
            return False
        destination = self.file(target, file_name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        journal_of(destination).unlink(missing_ok=True)
        shutil.copyfile(origin, destination)
        if journal_of(origin).is_file():
            shutil.copyfile(journal_of(origin), journal_of(destination))
        return True

    def adopt_flat_layout(self) -> None:
        """Zone files of an older version sit directly in DATA/zones: move them into the
        serving view's directory, so an upgraded pod keeps its data."""
        flat = self.data_dir / "zones"
        serving = self.directory(self.serving())
        serving.mkdir(parents=True, exist_ok=True)
        for path in sorted(flat.glob("*.db")) + sorted(flat.glob("*.db.jnl")):
            if path.is_file() and not (serving / path.name).exists():
                path.replace(serving / path.name)
                log.info("moved %s into %s", path.name, serving)
