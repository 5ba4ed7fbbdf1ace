"""`make demo` where no node can start: the process demo (tests/harness/demo.py --processes)
runs its story to the end and says what it shows."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.harness.tools import REPO


def test_the_process_demo_elects_fails_over_hands_over_and_stops_everything() -> None:
    demo = subprocess.run(
        [sys.executable, "-m", "tests.harness.demo", "--processes"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    printed = demo.stdout
    assert demo.returncode == 0, printed[-3000:] + demo.stderr[-3000:]
    elected = re.search(r"elected: (\S+) holds Lease", printed)
    crashed = re.search(r"new primary: (\S+), promoted [\d.]+s after the crash", printed)
    handed = re.search(r"new primary: (\S+) after [\d.]+s \(the Lease was released", printed)
    assert elected and crashed and handed, printed[-3000:]
    assert len({elected[1], crashed[1], handed[1]}) == 3, printed[-3000:]  # the role moved twice
    assert "stopped every process the demo started" in printed
