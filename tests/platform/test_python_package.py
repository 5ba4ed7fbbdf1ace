"""The Python package as pip builds it: the bind-ha command and its kubectl plugin name come with it."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import zipfile

from tests.harness.tools import REPO


def test_the_wheel_carries_the_command_and_both_entry_points(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "source"  # built from a copy: setuptools writes build files beside the sources
    shutil.copytree(REPO / "python", source / "python", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", source)
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("bind_ha-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in (
        "main",
        "model",
        "render",
        "plan",
        "clients",
        "api",
        "release",
        "actions",
        "names",
        "__init__",
    ):
        assert f"bind_ha/cli/{module}.py" in names
    assert "bind_ha/requests.py" in names and "bind_ha/named.conf.j2" in names
    (entry_points,) = [name for name in names if name.endswith("entry_points.txt")]
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "bind-ha = bind_ha.cli.main:main" in scripts
    assert "kubectl-bind_ha = bind_ha.cli.main:main" in scripts


def test_make_setup_put_the_command_on_the_venvs_path() -> None:
    for name in ("bind-ha", "kubectl-bind_ha"):
        script = REPO / ".venv" / "bin" / name
        assert script.is_file(), f"{script}: run `make setup`"
        shown = subprocess.run(
            [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
        )
        assert shown.returncode == 0 and "status" in shown.stdout and "client-config" in shown.stdout
    plugin = subprocess.run(
        [str(REPO / ".venv" / "bin" / "kubectl-bind_ha"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert plugin.stdout.startswith("usage: kubectl bind-ha")
