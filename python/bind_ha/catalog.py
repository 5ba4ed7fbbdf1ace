"""The zones this pod serves: the last valid version of every declared zone.

A source that fails validation never replaces what is serving: the previous
valid text of that zone stays (or a new zone is left out) and the failure is
reported. Every pod validates the same text with the same BIND, so all pods
agree on which zones exist.

Compiling runs on a worker thread, never on the caller's (the election round):
refresh() starts a look when the sources changed on disk and returns what the
last finished look found. Only the first look is waited for (bounded by the
compile limits), so that the first named.conf lists every zone. The worker
only computes; zones, failing and the digests change on the caller's thread.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from bind_ha.settings import Settings
from bind_ha.zonefiles import CanonicalZone, canonicalize, fingerprint, load_sources, sources_signature
from bind_ha.zonemodel import DEFAULT_LIMITS, ZoneError, ZoneLimits, ZoneSpec

log = logging.getLogger("bind_ha.catalog")
Signature = tuple[tuple[str, int, int, int], ...]


@dataclass(frozen=True)
class CatalogChange:
    """What one look at the sources found."""

    changed: tuple[str, ...] = ()  # zones whose valid text changed (or were added)
    removed: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()  # one message per rejected source, naming zone and line


@dataclass(frozen=True)
class Look:
    """What the worker found: every declared digest, new canonical texts, rejections."""

    digests: dict[str, str] | None  # None: the sources as a whole could not be read
    compiled: dict[str, CanonicalZone] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    source_error: str | None = None


def look(
    zones_file: Path,
    zones_dir: Path | None,
    zones_dir_type: str,
    scratch: Path,
    limits: ZoneLimits,
    seen: dict[str, str],
) -> Look:
    """Read the sources and compile the zones whose digest differs from `seen` (worker thread)."""
    try:
        declared = load_sources(zones_file, zones_dir, zones_dir_type, limits)
    except ZoneError as error:
        return Look(digests=None, source_error=str(error))
    digests = fingerprint(declared)
    compiled, rejected = {}, {}
    for spec in declared:
        if seen.get(spec.name) == digests[spec.name]:
            continue
        try:
            compiled[spec.name] = canonicalize(spec, workdir=scratch, limits=limits)
        except ZoneError as error:
            rejected[spec.name] = str(error)
    return Look(digests=digests, compiled=compiled, rejected=rejected)


@dataclass
class Catalog:
    zones_file: Path
    zones_dir: Path | None
    zones_dir_type: str
    scratch: Path
    limits: ZoneLimits = DEFAULT_LIMITS
    on_ready: Callable[[], None] = lambda: None  # a look finished: wake whoever calls refresh()
    zones: dict[str, CanonicalZone] = field(default_factory=dict)
    failing: dict[str, str] = field(default_factory=dict)  # zone -> why its current source is rejected
    _seen: dict[str, str] = field(default_factory=dict)  # digest of each source as last looked at
    _last_error: str | None = None
    _signature: Signature | None = None
    _pending: Future[Look] | None = None
    _looked_once: bool = False

    def specs(self) -> list[ZoneSpec]:
        return [self.zones[name].spec for name in sorted(self.zones)]

    def forget(self, zone: str) -> None:
        """Look at zone's source again next time, even if it has not changed (a write failed)."""
        self._seen.pop(zone, None)
        self._signature = None

    def refresh(self, *, wait: bool = False) -> CatalogChange:
        """Start a look if the sources changed on disk; apply the last finished look. Waits for
        the look when asked to, and always for the first one."""
        self._start_if_changed()
        pending = self._pending
        if pending is None or not (wait or not self._looked_once or pending.done()):
            return CatalogChange()
        found = pending.result()
        self._pending = None
        self._looked_once = True
        change = self._apply(found)
        self._start_if_changed()  # sources that changed during the look
        return change

    def _start_if_changed(self) -> None:
        if self._pending is not None:
            return
        signature = sources_signature(self.zones_file, self.zones_dir)
        if signature == self._signature:
            return
        self._signature = signature
        pending: Future[Look] = Future()
        seen = dict(self._seen)

        def work() -> None:
            try:
                sources = (self.zones_file, self.zones_dir, self.zones_dir_type)
                pending.set_result(look(*sources, self.scratch, self.limits, seen))
            except Exception as error:  # a bug must not leave refresh() waiting forever
                log.exception("zone look failed")
                pending.set_result(Look(digests=None, source_error=f"zone sources not read: {error}"))
            self.on_ready()

        self._pending = pending
        threading.Thread(target=work, name="zone-compiler", daemon=True).start()

    def _apply(self, found: Look) -> CatalogChange:
        if found.digests is None:
            return self._source_error(found.source_error or "zone sources not read")
        self._last_error = None
        changed, errors = [], []
        for name, digest in found.digests.items():
            if name in found.compiled:
                self.zones[name] = found.compiled[name]
                self.failing.pop(name, None)
                changed.append(name)
            elif name in found.rejected:
                self.failing[name] = found.rejected[name]
                errors.append(found.rejected[name])
            else:  # unchanged when the look began (or forgotten since: the next look compiles it)
                continue
            self._seen[name] = digest
        removed = sorted(set(self.zones) - set(found.digests))
        for name in removed:
            del self.zones[name]
        for name in set(self._seen) - set(found.digests):
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
    return Catalog(
        settings.zones_file, settings.zones_dir, settings.zones_dir_type, scratch, settings.zone_limits
    )
