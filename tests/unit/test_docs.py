"""The README is the front door: it must keep up with the code."""

from __future__ import annotations

import re

from bind_ha.settings import ENVIRONMENT
from tests.harness.tools import REPO

README = (REPO / "README.md").read_text()


def test_every_agent_variable_is_documented_with_its_default() -> None:
    for name, (_meaning, default) in ENVIRONMENT.items():
        row = next((line for line in README.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"{name} is missing from README.md's agent configuration table"
        expected = "(required)" if default is None else (f"`{default}`" if default else "(empty)")
        assert row.rstrip().endswith(f"| {expected} |"), row


def test_the_quick_start_commands_are_make_targets() -> None:
    makefile = (REPO / "Makefile").read_text()
    for target in ("setup", "demo", "test", "bench", "lint", "cluster-up", "cluster-down", "docs"):
        assert f"make {target}" in README, target
        assert re.search(rf"^{target}:", makefile, re.MULTILINE), target


def test_ci_runs_the_readme_setup_and_test_commands() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    assert "make setup" in ci and "make test" in ci
