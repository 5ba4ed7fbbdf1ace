"""Zone sources and zone files on disk, checked and compiled by BIND's own tools.

Every zone is validated by named-compilezone (the same parser named uses),
canonicalised to one record per line, given the serial the agent chose, and
written in raw format (the format secondaries write, so a promoted secondary's
files load unchanged). Writes are atomic: a failed check leaves the old file.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bind_ha.zonemodel import ZoneError, ZoneSpec, merge, parse_zones, zone_from_file

SOA_LINE = re.compile(
    r"^(?P<owner>\S+)\s+(?P<ttl>\d+)\s+IN\s+SOA\s+(?P<mname>\S+)\s+(?P<rname>\S+)\s+"
    r"(?P<serial>\d+)\s+(?P<timers>\d+\s+\d+\s+\d+\s+\d+)\s*$"
)
# e.g. "dns_rdata_fromtext: /tmp/x/example.test.zone:6: near 'x': bad dotted quad"
LOAD_ERROR = re.compile(r"(?P<file>/\S+?):(?P<line>\d+): (?P<message>.*)$")
TOOL_TIMEOUT = 120


@dataclass(frozen=True)
class CanonicalZone:
    """A checked zone: BIND's canonical text and the serial its source carried."""

    spec: ZoneSpec
    text: str
    source_serial: int

    def with_serial(self, serial: int) -> str:
        lines = self.text.splitlines()
        for index, line in enumerate(lines):
            match = SOA_LINE.match(line)
            if match:
                start, end = match.span("serial")
                lines[index] = line[:start] + str(serial) + line[end:]
                return "\n".join(lines) + "\n"
        raise ZoneError(f"{self.spec.origin}: no SOA record")


def _explain(spec: ZoneSpec, output: str) -> str:
    """named-compilezone's complaint, with line numbers mapped back to the user's text."""
    reasons = []
    for raw in output.splitlines():
        match = LOAD_ERROR.search(raw.strip())
        if match:
            line = int(match["line"]) - spec.body_offset
            where = "records line" if spec.body_offset else "line"
            if line <= 0:
                where, line = "generated header line", int(match["line"])
            reasons.append(f"{where} {line}: {match['message']}")
    if not reasons:
        reasons = [raw.strip() for raw in output.splitlines() if raw.strip() and raw.strip() != "OK"]
    return f"{spec.origin}: " + "; ".join(reasons or ["rejected by named-compilezone"])


def _compilezone(spec: ZoneSpec, *options: str) -> None:
    """Run named-compilezone (BIND's own parser) on spec; ZoneError names the zone and line."""
    try:
        result = subprocess.run(
            ["named-compilezone", *options], capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired:
        raise ZoneError(f"{spec.origin}: named-compilezone took over {TOOL_TIMEOUT}s") from None
    if result.returncode != 0:
        raise ZoneError(_explain(spec, result.stdout + result.stderr))


def canonicalize(spec: ZoneSpec, *, workdir: Path) -> CanonicalZone:
    """Check a zone and return BIND's canonical text of it (one record per line)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        source = Path(scratch) / f"{spec.name}.zone"
        target = Path(scratch) / f"{spec.name}.canonical"
        source.write_text(spec.text)
        _compilezone(
            spec, "-k", "fail", "-s", "full", "-F", "text", "-o", str(target), spec.name, str(source)
        )
        text = target.read_text()
    for line in text.splitlines():
        match = SOA_LINE.match(line)
        if match:
            return CanonicalZone(spec=spec, text=text, source_serial=int(match["serial"]))
    raise ZoneError(f"{spec.origin}: no SOA record")


def write_raw(zone: CanonicalZone, serial: int, zones_dir: Path) -> Path:
    """Compile zone at serial into ZONES_DIR/NAME.db (raw format), atomically.

    A leftover journal belongs to the old contents; named would try to replay
    it onto the new file, so it goes too (a dynamic zone is only ever written
    here when it is first seeded).
    """
    zones_dir.mkdir(parents=True, exist_ok=True)
    destination = zones_dir / zone.spec.file_name
    with tempfile.TemporaryDirectory(dir=zones_dir) as scratch:
        text_file = Path(scratch) / "zone.txt"
        raw_file = Path(scratch) / "zone.raw"
        text_file.write_text(zone.with_serial(serial))
        _compilezone(zone.spec, "-F", "raw", "-o", str(raw_file), zone.spec.name, str(text_file))
        os.replace(raw_file, destination)
    journal_of(destination).unlink(missing_ok=True)
    return destination


def journal_of(zone_file: Path) -> Path:
    return zone_file.with_name(zone_file.name + ".jnl")


def fingerprint(zones: Iterable[ZoneSpec]) -> dict[str, str]:
    """Per-zone digest of type and text: what changed since the last look."""
    return {zone.name: hashlib.sha256(f"{zone.type}\0{zone.text}".encode()).hexdigest() for zone in zones}


def sources_signature(zones_file: Path, zones_dir: Path | None) -> tuple[tuple[str, int, int, int], ...]:
    """Cheap fingerprint (name, inode, mtime, size) of the sources, to notice an edit within
    ~100 ms. stat() follows symlinks, so a ConfigMap update (a swapped ..data link) shows up."""
    paths = [zones_file]
    if zones_dir is not None and zones_dir.is_dir():
        paths += sorted(path for path in zones_dir.iterdir() if path.name.endswith(".zone"))
    signature = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        signature.append((path.name, stat.st_ino, stat.st_mtime_ns, stat.st_size))
    return tuple(signature)


def _read(path: Path) -> str:
    """A source file's text; unreadable or not UTF-8 is a ZoneError (a ConfigMap may be
    swapped under us between listing and reading: the next look sees the new one)."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ZoneError(f"{path}: cannot be read: {error}") from None


def load_sources(zones_file: Path, zones_dir: Path | None, zones_dir_type: str) -> list[ZoneSpec]:
    """Every declared zone: zones.yaml plus NAME.zone files of the zones directory."""
    sources = []
    if zones_file.exists():
        try:
            declared = yaml.safe_load(_read(zones_file))
        except yaml.YAMLError as error:
            raise ZoneError(f"{zones_file}: not valid YAML: {error}") from None
        sources.append(parse_zones(declared, str(zones_file)))
    if zones_dir is not None and zones_dir.is_dir():
        # ConfigMap volumes hold ..data links and dot-directories: only NAME.zone files count.
        files = sorted(path for path in zones_dir.iterdir() if path.name.endswith(".zone") and path.is_file())
        sources.append(
            [zone_from_file(path.name, _read(path), zones_dir_type, str(zones_dir)) for path in files]
        )
    return merge(sources)
