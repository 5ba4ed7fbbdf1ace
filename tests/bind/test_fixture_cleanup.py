"""The named_set fixture stops its processes even when the test using it fails."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import textwrap

from tests.harness.processes import is_our_process
from tests.harness.tools import REPO, tool

FAILING_TEST = """
from tests.conftest import loopback, named_set  # noqa: F401 - the fixtures under test

def test_fails_with_named_running(named_set):
    (one,) = named_set.create(1)
    one.start(one.controls() + "options { " + one.base_options() + " };\\n")
    open(PID_FILE, "w").write(str(one.process.pid))
    assert False, "this test fails on purpose"
"""


def test_named_instances_are_stopped_when_the_test_fails(tmp_path: pathlib.Path) -> None:
    pid_file = tmp_path / "named.pid"
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(f"PID_FILE = {str(pid_file)!r}\n" + textwrap.dedent(FAILING_TEST))
    inner = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--rootdir={tmp_path}",
            "-o",
            f"pythonpath={REPO} {REPO / 'python'}",
            str(test_file),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(os.environ),
    )
    assert inner.returncode == 1, inner.stdout + inner.stderr
    assert "this test fails on purpose" in inner.stdout
    pid = int(pid_file.read_text())
    assert not is_our_process(pid, tool("named")), "named outlived the failed test"
