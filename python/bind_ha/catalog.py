"""The zones this pod serves: the last valid version of every declared zone.

A source that fails validation never replaces what is serving: the previous
valid text of that zone stays (or a new zone is left out) and the failure is
reported. Every pod validates the same text with the same BIND, so all pods
agree on which zones exist.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bind_ha.settings import Settings
from bind_ha.zonefiles import CanonicalZone, canonicalize, fingerprint, load_sources, sources_signature
from bind_ha.zonemodel import ZoneError, ZoneSpec

log = logging.getLogger("bind_ha.catalog")


@dataclass(frozen=True)
class CatalogChange:
    """What one look at the sources found."""

    changed: tuple[str, ...] = ()  # zones whose valid text changed (or were added)
    removed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # one message per rejected source, naming zone and line


@dataclass
class Catalog:
    zones_file: Path
    zones_dir: Path | None
    zones_dir_type: str
    scratch: Path
    zones: dict[str, CanonicalZone] = field(default_factory=dict)
    failing: dict[str, str] = field(default_factory=dict)  # zone -> why its current source is rejected
    _seen: dict[str, str] = field(default_factory=dict)  # digest of each source as last looked at
    _last_error: str | None = None
    _signature: tuple[tuple[str, int, int, int], ...] | None = None

    def specs(self) -> list[ZoneSpec]:
        return [self.zones[name].spec for name in sorted(self.zones)]

    def forget(self, zone: str) -> None:
        """Look at zone's source again next time, even if it has not changed (a write failed)."""
        self._seen.pop(zone, None)
        self._signature = None

    def refresh(self) -> CatalogChange:
        """Re-read the sources if they changed on disk; apply what is valid, keep the rest."""
        signature = sources_signature(self.zones_file, self.zones_dir)
        if signature == self._signature:
            return CatalogChange()
        self._signature = signature
        try:
            declared = load_sources(self.zones_file, self.zones_dir, self.zones_dir_type)
        except ZoneError as error:
            return self._source_error(str(error))
        self._last_error = None
        digests = fingerprint(declared)
        changed, errors = [], []
        for spec in declared:
            if self._seen.get(spec.name) == digests[spec.name]:
                continue
            self._seen[spec.name] = digests[spec.name]
            try:
                self.zones[spec.name] = canonicalize(spec, workdir=self.scratch)
                self.failing.pop(spec.name, None)
                changed.append(spec.name)
            except ZoneError as error:
                self.failing[spec.name] = str(error)
                errors.append(str(error))
        removed = sorted(set(self.zones) - set(digests))
        for name in removed:
            del self.zones[name]
        for name in set(self._seen) - set(digests):
            del self._seen[name]
            self.failing.pop(name, None)
        return CatalogChange(tuple(sorted(changed)), tuple(removed), tuple(errors))

    def _source_error(self, message: str) -> CatalogChange:
        """The whole source is unreadable (bad YAML, duplicate zones): change nothing."""
        if message == self._last_error:
            return CatalogChange()
        self._last_error = message
        return CatalogChange(errors=(message,))


def catalog_for(settings: Settings) -> Catalog:
    """The catalog of this pod's sources; zones are compiled under /tmp (on disk in the
    chart), not in the small memory-backed run directory."""
    scratch = Path(tempfile.gettempdir()) / "bind-ha-zones"
    return Catalog(settings.zones_file, settings.zones_dir, settings.zones_dir_type, scratch)
