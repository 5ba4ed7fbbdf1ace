"""Run one program with resource limits and, where the kernel allows, a Landlock sandbox.

    python3 -I sandbox.py --workdir DIR --memory BYTES --seconds N [--probe] -- PROGRAM ARGS...

zonefiles.py runs named-compilezone through this script. The compiler runs as the
agent's own UID in the agent's container, so file permissions cannot keep it away
from the TSIG keys, the rndc key or the API token; what does:

1. zonemodel.check_text refuses `$INCLUDE` before the compiler sees the text, and
   the text arrives on stdin: the compiler is never given a path it did not get from us.
2. Landlock (Linux 5.13+, unprivileged): before exec this process restricts itself and
   everything it starts to reading the system's program and library directories and
   reading/writing DIR. Every other file (the keys, the token, the run directory) is
   refused by the kernel, TCP connect/bind are refused (ABI 4+), and so are signals
   to processes outside the sandbox (ABI 6+). The restriction survives exec.
3. rlimits: a data-segment cap (memory), a CPU-time cap, a file-size cap, no core dumps.
4. The environment is replaced by PATH and LC_ALL=C.

Landlock can be missing (old kernel, or a seccomp profile without its syscalls);
then this script still runs the program with 1, 3 and 4, and `--probe` exits
PROBE_UNAVAILABLE so the agent can say so once in its log.

Standalone on purpose: run with `python3 -I`, it imports only the standard library.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import struct
import sys
from collections.abc import Sequence

PROBE_UNAVAILABLE = 3
# Syscall numbers of the Landlock calls are the same on every architecture (444-446).
CREATE_RULESET, ADD_RULE, RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38
O_PATH = getattr(os, "O_PATH", 0o10000000)

# Filesystem rights (uapi/linux/landlock.h) and the ABI that introduced them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}
ALL_FS_RIGHTS = (1 << 16) - 1  # ABI 5 and later
NET_TCP = (1 << 0) | (1 << 1)  # bind and connect, ABI 4+
SCOPES = (1 << 0) | (1 << 1)  # abstract unix sockets and signals, ABI 6+
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

READ_ONLY = EXECUTE | READ_FILE | READ_DIR
# Where the compiler's program, libraries and their configuration live. Not /etc as a
# whole: the TSIG keys are mounted under /etc/bind-ha.
SYSTEM_READ = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin")
SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ssl/openssl.cnf",
    "/etc/localtime",
    "/proc/sys/vm/overcommit_memory",
    "/proc/stat",
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/sys/kernel/mm/transparent_hugepage/enabled",
    "/sys/devices/system/cpu/online",
    "/sys/devices/system/cpu/possible",
    "/dev/urandom",
)
DEV_NULL = "/dev/null"
CLEAN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


class Unavailable(OSError):
    """The kernel (or the container's seccomp profile) offers no Landlock."""


def _syscall(libc: ctypes.CDLL, number: int, *args: object) -> int:
    result = int(libc.syscall(number, *args))
    if result < 0:
        error = ctypes.get_errno()
        raise Unavailable(error, os.strerror(error))
    return result


def landlock_abi(libc: ctypes.CDLL) -> int:
    return _syscall(libc, CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))


def _allow(libc: ctypes.CDLL, ruleset: int, path: str, rights: int, handled: int) -> None:
    """Allow rights beneath path (a file gets only file rights); a missing path is skipped."""
    try:
        fd = os.open(path, O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            rights &= FILE_RIGHTS
        attr = struct.pack("=Qi", rights & handled, fd)
        rule = ctypes.c_int(RULE_PATH_BENEATH)
        _syscall(libc, ADD_RULE, ctypes.c_int(ruleset), rule, attr, ctypes.c_uint32(0))
    finally:
        os.close(fd)


def restrict(workdir: str, extra_read: Sequence[str] = ()) -> int:
    """Confine this process and its future children to reading the system and using workdir;
    returns the Landlock ABI version applied. Raises Unavailable when there is no Landlock."""
    libc = ctypes.CDLL(None, use_errno=True)
    abi = landlock_abi(libc)
    handled = FS_RIGHTS_BY_ABI.get(abi, ALL_FS_RIGHTS)
    attr = struct.pack("=Q", handled)
    if abi >= 4:
        attr += struct.pack("=Q", NET_TCP)
    if abi >= 6:
        attr += struct.pack("=Q", SCOPES)
    ruleset = _syscall(libc, CREATE_RULESET, attr, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    try:
        for path in (*SYSTEM_READ, *extra_read):
            _allow(libc, ruleset, path, READ_ONLY, handled)
        for path in SYSTEM_FILES:
            _allow(libc, ruleset, path, READ_FILE, handled)
        _allow(libc, ruleset, DEV_NULL, READ_FILE | WRITE_FILE, handled)
        _allow(libc, ruleset, workdir, handled, handled)
        if int(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) != 0:
            raise Unavailable(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        _syscall(libc, RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return abi


def limit(memory: int, seconds: float, file_size: int) -> None:
    """Memory (data segment: heap and private mappings), CPU time, file size; no core dumps."""
    cpu = max(1, int(seconds) + 1)
    resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--file-size", type=int, default=1 << 30)
    parser.add_argument("--read", action="append", default=[], help="another directory to allow reading")
    parser.add_argument("--probe", action="store_true", help="exit 0 if Landlock applies, 3 if not")
    parser.add_argument("--no-landlock", action="store_true", help="rlimits and a clean environment only")
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    try:
        if not args.no_landlock:
            restrict(args.workdir, args.read)
    except Unavailable:
        if args.probe:
            return PROBE_UNAVAILABLE
    if args.probe:
        return 0
    limit(args.memory, args.seconds, args.file_size)
    os.chdir(args.workdir)
    os.execve(program[0], program, CLEAN_ENV)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
