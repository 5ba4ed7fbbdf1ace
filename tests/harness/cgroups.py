"""The cgroup of one node run, the same relative path in every mounted hierarchy.

Every process of a run lives under it: the node's own components in `system/`
(moved there right after they start), and the kubelet's pods in `kubepods/` (the
kubelet's cgroupRoot is the run's cgroup). So "every process of the run" is what
its cgroup lists, even after the processes that started them died: a run killed
with SIGKILL is cleaned up by killing what its cgroup still holds and removing
the directories.

A run's cgroup nests under this process's own memory cgroup, so whatever
accounts for (and cleans up after) the processes of this session covers the
node's too; the same path is created in the other hierarchies, because the
kubelet's cgroupfs driver uses one path in all of them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import signal
import time
from dataclasses import dataclass

SYSTEM = "system"  # the run's own components; the kubelet adds kubepods beside it


def _mounts() -> dict[pathlib.Path, str]:
    """Mount point of every cgroup (v1) and cgroup2 hierarchy -> its key in _own_paths():
    the controllers as /proc/self/cgroup lists them ("cpu", "name=systemd"; "" for cgroup2)."""
    keys = list(_own_paths())
    found = {}
    for line in pathlib.Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, fs = line.partition(" - ")
        fstype, _source, options = [*fs.split(" "), "", ""][:3]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mounted = set(options.split(","))
        v1 = next((key for key in keys if key and set(key.split(",")) <= mounted), "?")
        found[pathlib.Path(fields.split(" ")[4])] = "" if fstype == "cgroup2" else v1
    return found


def hierarchies() -> list[pathlib.Path]:
    """Mount points of every cgroup (v1) and cgroup2 hierarchy, from /proc/self/mountinfo."""
    return list(_mounts())


def hierarchy(controller: str) -> pathlib.Path | None:
    """Mount point of the cgroup v1 hierarchy holding `controller` (e.g. "memory")."""
    return next((root for root, key in _mounts().items() if controller in key.split(",")), None)


def _own_paths() -> dict[str, str]:
    """This process's cgroup in each hierarchy, keyed by its sorted controllers."""
    paths = {}
    for line in pathlib.Path("/proc/self/cgroup").read_text().splitlines():
        _number, controllers, path = line.split(":", 2)
        paths[",".join(sorted(controllers.split(",")))] = path
    return paths


def own_path() -> str:
    """This process's cgroup in the memory hierarchy (or the cgroup2 one), e.g. /a/b."""
    paths = _own_paths()
    memory = next((path for names, path in paths.items() if "memory" in names.split(",")), None)
    return memory or paths.get("") or "/"


@dataclass(frozen=True)
class RunCgroup:
    """One run's cgroup: `path` is relative to every hierarchy's mount point."""

    path: str

    @classmethod
    def for_run(cls, run_id: str) -> RunCgroup:
        return cls(f"{own_path().rstrip('/')}/{run_id}")

    def dirs(self) -> list[pathlib.Path]:
        return [root / self.path.lstrip("/") for root in hierarchies()]

    def create(self) -> None:
        """Make the run's cgroup and its system/ child everywhere (with any missing parents:
        where this process sits higher up, e.g. at the root of the cpu hierarchy)."""
        for root in hierarchies():
            missing = []
            directory = root / self.path.lstrip("/")
            while not directory.exists():
                missing.append(directory)
                directory = directory.parent
            for new in reversed(missing):
                new.mkdir()
                _inherit_cpuset(new)
            system = root / self.path.lstrip("/") / SYSTEM
            system.mkdir(exist_ok=True)
            _inherit_cpuset(system)

    def adopt(self, pid: int) -> None:
        """Move a process of the run (and so its future children) into system/."""
        for directory in self.dirs():
            with contextlib.suppress(ProcessLookupError, FileNotFoundError):
                (directory / SYSTEM / "cgroup.procs").write_text(f"{pid}\n")

    def pids(self) -> set[int]:
        """Every process in the run's cgroups, in any hierarchy."""
        found: set[int] = set()
        for directory in self.dirs():
            for procs in directory.rglob("cgroup.procs") if directory.exists() else ():
                with contextlib.suppress(OSError):
                    found.update(int(pid) for pid in procs.read_text().split())
        return found

    def exists(self) -> bool:
        return any(directory.exists() for directory in self.dirs())

    def kill(self, timeout: float = 20.0) -> set[int]:
        """SIGKILL every process of the run until none is left; returns the PIDs killed."""
        killed: set[int] = set()
        deadline = time.monotonic() + timeout
        while pids := self.pids():
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of cgroup {self.path} survive SIGKILL: {sorted(pids)}")
            for pid in pids - {os.getpid()}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
            time.sleep(0.05)
        return killed

    def remove(self) -> None:
        """Remove the run's (empty) cgroups, deepest first, then the parents create() had to
        make, when no other run uses them: those that are not this process's own cgroup
        (or above it) in their hierarchy."""
        own = _own_paths()
        for root, controllers in _mounts().items():
            directory = root / self.path.lstrip("/")
            if directory.exists():
                for below, subdirs, _files in os.walk(directory, topdown=False):
                    for subdir in subdirs:
                        _rmdir(pathlib.Path(below) / subdir)
                _rmdir(directory)
            keep = root / own.get(controllers, "/").lstrip("/")
            parent = directory.parent
            while parent != root and parent not in (keep, *keep.parents):
                try:
                    parent.rmdir()
                except OSError:  # busy (another run beside this one) or already gone
                    break
                parent = parent.parent


def _rmdir(directory: pathlib.Path) -> None:
    """rmdir a cgroup; the kernel may need a moment after its last process died."""
    for _attempt in range(100):
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as error:
            if error.errno != errno.EBUSY:
                raise
            time.sleep(0.05)
    directory.rmdir()


def _inherit_cpuset(directory: pathlib.Path) -> None:
    """A new v1 cpuset cgroup starts with no CPUs and no memory nodes: copy the parent's."""
    for name in ("cpuset.cpus", "cpuset.mems"):
        own = directory / name
        if own.exists() and not own.read_text().strip():
            own.write_text((directory.parent / name).read_text())
