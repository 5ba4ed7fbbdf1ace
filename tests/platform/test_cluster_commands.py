"""`make cluster-up` / `make cluster-down` as a developer runs them."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys

from tests.harness.cluster import DEFAULT_PORTS
from tests.harness.tools import REPO, tool


def cluster(command: str, state: pathlib.Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.harness.cluster", command],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=180,
        check=False,
        env={**os.environ, "BIND_HA_CLUSTER_DIR": str(state)},
    )


def test_cluster_up_prints_a_kubeconfig_whose_readyz_is_ok_and_down_removes_everything(
    tmp_path: pathlib.Path,
) -> None:
    state = tmp_path / "cluster"
    up = cluster("up", state)
    try:
        assert up.returncode == 0, up.stderr
        export = next(line for line in up.stdout.splitlines() if line.startswith("export KUBECONFIG="))
        kubeconfig = export.split("=", 1)[1]
        assert kubeconfig == str(state / "kubeconfig")
        readyz = subprocess.run(
            [tool("kubectl"), f"--kubeconfig={kubeconfig}", "get", "--raw", "/readyz"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert readyz.stdout == "ok"
        again = cluster("up", state)
        assert again.returncode == 0 and "already running" in again.stdout
        assert cluster("status", state).returncode == 0
        temporary = pathlib.Path(up.stdout.split("state in ", 1)[1].split()[0])
        assert temporary.is_dir()
    finally:
        down = cluster("down", state)
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not temporary.exists() and not (state / "state.json").exists()
    assert cluster("status", state).returncode == 1


def test_a_port_in_use_is_a_clear_error_naming_the_component(tmp_path: pathlib.Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", DEFAULT_PORTS["apiserver"]))
        squatter.listen()
        up = cluster("up", tmp_path / "cluster")
    assert up.returncode == 1
    assert f"apiserver: port 127.0.0.1:{DEFAULT_PORTS['apiserver']} is already in use" in up.stderr
    assert not (tmp_path / "cluster" / "state.json").exists()
