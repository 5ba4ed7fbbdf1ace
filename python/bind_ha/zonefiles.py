"""Zone sources and zone files on disk, checked and compiled by BIND's own tools.

Every zone is validated by named-compilezone (the same parser named uses),
canonicalised to one record per line, given the serial the agent chose, and
written in raw format (the format secondaries write, so a promoted secondary's
files load unchanged). Writes are atomic: a failed check leaves the old file.

The compiler is hostile input's first reader, so it runs confined (sandbox.py):
the text on stdin, a fresh scratch directory as its only writable place, a
clean environment, memory, CPU and time limits, and Landlock where the kernel
has it. Its complaints reach logs and Events only when they are about the
zone's own text (a line of stdin, or the zone itself): never a path or a
token from anywhere else.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from bind_ha import sandbox
from bind_ha.zonemodel import (
    DEFAULT_LIMITS,
    ZoneError,
    ZoneLimits,
    ZoneSpec,
    merge,
    parse_zones,
    zone_from_file,
)

log = logging.getLogger("bind_ha.zonefiles")

SOA_LINE = re.compile(
    r"^(?P<owner>\S+)\s+(?P<ttl>\d+)\s+IN\s+SOA\s+(?P<mname>\S+)\s+(?P<rname>\S+)\s+"
    r"(?P<serial>\d+)\s+(?P<timers>\d+\s+\d+\s+\d+\s+\d+)\s*$"
)
STDIN = "/dev/stdin"
# e.g. "dns_rdata_fromtext: /dev/stdin:6: near 'x': bad dotted quad": about a line of our text
LOAD_ERROR = re.compile(r"^(?:[a-z_]+: )?/dev/stdin:(?P<line>\d+): (?P<message>.*)$")
NOISE = ("loading from master file", "not loaded due to errors")
MAX_REASONS = 5
MAX_REASON_LENGTH = 200
SANDBOX = Path(sandbox.__file__)


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


def _zone_line(spec: ZoneSpec, raw: str) -> str | None:
    """One line of the compiler's output, if it is about the zone's own text; else None."""
    match = LOAD_ERROR.match(raw)
    if match:
        line = int(match["line"]) - spec.body_offset
        where = "records line" if spec.body_offset else "line"
        if line <= 0:
            where, line = "generated header line", int(match["line"])
        return f"{where} {line}: {match['message']}"
    prefix = f"zone {spec.name}/IN: "
    if raw.startswith(prefix) and not any(noise in raw for noise in NOISE):
        return raw.removeprefix(prefix)
    return None


def _explain(spec: ZoneSpec, output: str) -> str:
    """named-compilezone's complaint, with line numbers mapped back to the user's text. Only
    lines about this zone's own text are kept (whitelist): a path or a token read from any
    other file, a backtrace or a tool's banner never reaches a log line or an Event."""
    reasons = []
    for raw in output.splitlines():
        reason = _zone_line(spec, raw.strip())
        if reason and reason not in reasons:
            reasons.append(reason[:MAX_REASON_LENGTH])
    return f"{spec.origin}: " + "; ".join(reasons[:MAX_REASONS] or ["rejected by named-compilezone"])


@functools.cache
def _compiler() -> str:
    found = shutil.which("named-compilezone") or shutil.which("named-compilezone", path="/usr/sbin:/sbin")
    if found is None:
        raise ZoneError("named-compilezone is not installed")
    return str(Path(found).resolve())


PROBE_ZONE = "$TTL 60\n@ IN SOA ns1 host 1 60 60 60 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
PROBE_SPEC = ZoneSpec(name="probe.invalid", type="static", text=PROBE_ZONE, origin="the sandbox self-check")


@functools.cache
def kernel_sandbox() -> bool:
    """Whether Landlock confines the compiler here: the kernel must offer it, and a known-good
    zone must compile under it (a system whose compiler needs files the sandbox does not allow
    would otherwise reject every zone). Said once in the log when it does not."""
    with tempfile.TemporaryDirectory() as scratch:
        probe = [*_sandbox_command(Path(scratch), DEFAULT_LIMITS, landlock=True), "--probe"]
        if subprocess.run(probe, capture_output=True, timeout=60, check=False).returncode != 0:
            log.warning(
                "Landlock is not available: the zone compiler is confined by $INCLUDE refusal, stdin "
                "input, rlimits and a clean environment only"
            )
            return False
        try:
            output = str(Path(scratch) / "probe.out")
            _run_compiler(PROBE_SPEC, PROBE_ZONE, Path(scratch), DEFAULT_LIMITS, True, "-o", output)
        except ZoneError as error:
            log.error("the zone compiler fails under Landlock (%s): compiling without it", error)
            return False
    return True


def _sandbox_command(workdir: Path, limits: ZoneLimits, *, landlock: bool) -> list[str]:
    command = [
        sys.executable, "-I", str(SANDBOX),
        "--workdir", str(workdir),
        "--memory", str(limits.compile_memory),
        "--seconds", str(limits.compile_seconds),
        "--file-size", str(max(4 * limits.max_bytes, 1 << 28)),
        "--read", str(Path(_compiler()).parent),
    ]  # fmt: skip
    return command if landlock else [*command, "--no-landlock"]


def _compilezone(spec: ZoneSpec, text: str, workdir: Path, limits: ZoneLimits, *options: str) -> None:
    """Run named-compilezone (BIND's own parser) confined, on text given on stdin; ZoneError
    names the zone and line. `options` must end with the output path (inside workdir)."""
    _run_compiler(spec, text, workdir, limits, kernel_sandbox(), *options)


def _run_compiler(
    spec: ZoneSpec, text: str, workdir: Path, limits: ZoneLimits, landlock: bool, *options: str
) -> None:
    command = [
        *_sandbox_command(workdir, limits, landlock=landlock),
        "--",
        _compiler(),
        *options,
        spec.name,
        STDIN,
    ]
    try:
        result = subprocess.run(
            command,
            input=text,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=limits.compile_seconds,
            check=False,
            cwd=workdir,
            env=sandbox.CLEAN_ENV,
        )
    except subprocess.TimeoutExpired:
        seconds = limits.compile_seconds
        raise ZoneError(f"{spec.origin}: compiling took over {seconds:g}s (the limit)") from None
    if result.returncode in (-signal.SIGABRT, -signal.SIGKILL, -signal.SIGSEGV):
        raise ZoneError(
            f"{spec.origin}: compiling needed more than {limits.compile_memory // 2**20} MiB (the limit)"
        )
    if result.returncode == -signal.SIGXCPU:
        raise ZoneError(f"{spec.origin}: compiling took over {limits.compile_seconds:g}s of CPU (the limit)")
    if result.returncode != 0:
        raise ZoneError(_explain(spec, result.stdout + result.stderr))


def canonicalize(spec: ZoneSpec, *, workdir: Path, limits: ZoneLimits = DEFAULT_LIMITS) -> CanonicalZone:
    """Check a zone and return BIND's canonical text of it (one record per line)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir) as scratch:
        target = Path(scratch) / "canonical"
        options = ("-k", "fail", "-s", "full", "-F", "text", "-o", str(target))
        _compilezone(spec, spec.text, Path(scratch), limits, *options)
        text = target.read_text()
    for line in text.splitlines():
        match = SOA_LINE.match(line)
        if match:
            return CanonicalZone(spec=spec, text=text, source_serial=int(match["serial"]))
    raise ZoneError(f"{spec.origin}: no SOA record")


def write_raw(zone: CanonicalZone, serial: int, zones_dir: Path, limits: ZoneLimits = DEFAULT_LIMITS) -> Path:
    """Compile zone at serial into ZONES_DIR/NAME.db (raw format), atomically.

    A leftover journal belongs to the old contents; named would try to replay
    it onto the new file, so it goes too (a dynamic zone is only ever written
    here when it is first seeded).
    """
    zones_dir.mkdir(parents=True, exist_ok=True)
    destination = zones_dir / zone.spec.file_name
    with tempfile.TemporaryDirectory(dir=zones_dir) as scratch:
        raw_file = Path(scratch) / "zone.raw"
        text = zone.with_serial(serial)
        _compilezone(zone.spec, text, Path(scratch), limits, "-F", "raw", "-o", str(raw_file))
        os.replace(raw_file, destination)
    journal_of(destination).unlink(missing_ok=True)
    return destination


MAX_ZONES_FILE = 64 * 2**20  # zones.yaml is a ConfigMap (1 MiB); a bound, not a policy


def _yaml_problem(error: yaml.YAMLError) -> str:
    """Where the YAML is broken, without echoing its text."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or type(error).__name__
    return f"{problem} at line {mark.line + 1}" if mark is not None else str(problem)


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


def _read(path: Path, max_bytes: int) -> str:
    """A source file's text; unreadable, too large or not UTF-8 is a ZoneError (a ConfigMap may
    be swapped under us between listing and reading: the next look sees the new one). Never
    more than max_bytes + 1 bytes are read, whatever the file's size."""
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ZoneError(f"{path}: over the {max_bytes}-byte limit")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ZoneError(f"{path}: cannot be read: {type(error).__name__}") from None


def load_sources(
    zones_file: Path, zones_dir: Path | None, zones_dir_type: str, limits: ZoneLimits = DEFAULT_LIMITS
) -> list[ZoneSpec]:
    """Every declared zone: zones.yaml plus NAME.zone files of the zones directory."""
    sources = []
    if zones_file.exists():
        # zones.yaml holds every zone of values: it may be as large as all of them together.
        text = _read(zones_file, MAX_ZONES_FILE)
        try:
            declared = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ZoneError(f"{zones_file}: not valid YAML: {_yaml_problem(error)}") from None
        sources.append(parse_zones(declared, str(zones_file), limits))
    if zones_dir is not None and zones_dir.is_dir():
        # ConfigMap volumes hold ..data links and dot-directories: only NAME.zone files count.
        files = sorted(path for path in zones_dir.iterdir() if path.name.endswith(".zone") and path.is_file())
        origin = str(zones_dir)
        sources.append(
            [
                zone_from_file(path.name, _read(path, limits.max_bytes), zones_dir_type, origin, limits)
                for path in files
            ]
        )
    return merge(sources)
