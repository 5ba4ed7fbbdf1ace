"""Start and stop local server processes by recorded PID, with clear failures."""

from __future__ import annotations

import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class StartupError(RuntimeError):
    """A component did not come up; the message carries its log tail."""


def log_tail(path: pathlib.Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port the kernel says is free now on host."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def ensure_port_free(port: int, component: str, host: str = "127.0.0.1") -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise StartupError(f"{component}: port {host}:{port} is already in use ({exc.strerror})") from exc


@dataclass
class Process:
    """A server we started: its name, PID, command and log file."""

    name: str
    pid: int
    argv: list[str]
    log: pathlib.Path

    def alive(self) -> bool:
        return is_our_process(self.pid, self.argv[0])

    def stop(self, timeout: float = 10.0) -> None:
        stop_pid(self.pid, self.argv[0], timeout)


def start(
    name: str,
    argv: Sequence[str],
    log: pathlib.Path,
    *,
    env: dict[str, str] | None = None,
    prefix: Sequence[str] = (),
    pass_fds: Sequence[int] = (),
) -> Process:
    """Start argv in its own session (it outlives `make cluster-up`), logging to log.

    prefix is a command that execs argv in the same process (nsenter, unshare): the
    process is recorded as argv once that exec happened."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*prefix, *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
            pass_fds=tuple(pass_fds),
        )
    process = Process(name=name, pid=proc.pid, argv=list(argv), log=log)
    if prefix:
        deadline = time.monotonic() + 10
        while not process.alive():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise StartupError(f"{name} did not start ({' '.join(prefix)}); log tail:\n{log_tail(log)}")
            time.sleep(0.01)
    return process


def is_our_process(pid: int, executable: str) -> bool:
    """True when pid is alive and still runs executable (PIDs get reused)."""
    for _ in range(50):
        try:
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = pathlib.Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return False
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
        if cmdline:
            return cmdline.split(b"\0", 1)[0].decode(errors="replace") == executable
        time.sleep(0.01)  # cmdline reads empty while the process is still exec'ing
    return False


def stop_pid(pid: int, executable: str, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after timeout; only if pid still runs executable."""
    if not is_our_process(pid, executable):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_our_process(pid, executable):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_our_process(pid, executable) and time.monotonic() < deadline:
        time.sleep(0.05)


def wait_until(process: Process, ready: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ready() until it holds; fail early with the log tail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise StartupError(f"{process.name} exited while {what}; log tail:\n{log_tail(process.log)}")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.2)
    raise StartupError(f"{process.name} not {what} after {timeout:.0f}s; log tail:\n{log_tail(process.log)}")
