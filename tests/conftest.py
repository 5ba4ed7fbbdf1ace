"""Fixtures shared by every tier. Tiers are markers, given by directory:
tests/unit -> unit, tests/chart -> chart, tests/bind -> bind,
tests/platform and tests/apiserver -> apiserver, tests/integration -> integration,
tests/e2e -> e2e.
A test may not skip: a missing tool is a setup failure (see pytest_runtest_makereport).
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import kubernetes
import pytest

from tests.harness.cluster import LocalCluster, Ports
from tests.harness.named import LoopbackAllocator, NamedSet
from tests.harness.tools import path_with_tools

TIER_BY_DIRECTORY = {
    "unit": "unit",
    "chart": "chart",
    "bind": "bind",
    "platform": "apiserver",
    "apiserver": "apiserver",
    "integration": "integration",
    "e2e": "e2e",
}

os.environ["PATH"] = path_with_tools()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        directory = pathlib.Path(str(item.fspath)).parent.name
        tier = TIER_BY_DIRECTORY.get(directory)
        if tier is None:
            raise pytest.UsageError(f"{item.nodeid}: tests live in one of {sorted(TIER_BY_DIRECTORY)}")
        item.add_marker(getattr(pytest.mark, tier))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Turn any skip into a failure: an absent dependency must fail, not hide."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped tests are not allowed in bind-ha: {report.longrepr}"


@pytest.fixture(scope="session")
def loopback() -> LoopbackAllocator:
    return LoopbackAllocator()


@pytest.fixture
def named_set(tmp_path: pathlib.Path, loopback: LoopbackAllocator) -> Iterator[NamedSet]:
    """Real named instances on distinct loopback addresses; all stopped even if the test fails."""
    instances = NamedSet(tmp_path / "named", loopback)
    try:
        yield instances
    finally:
        instances.stop_all()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One real control plane (etcd + kube-apiserver + controllers) for the whole run."""
    state = tmp_path_factory.mktemp("control-plane")
    cluster = LocalCluster(state, Ports.free(), state / "kubeconfig")
    cluster.up()
    try:
        yield cluster
    finally:
        cluster.down()


@pytest.fixture(scope="session")
def kube_config(control_plane: LocalCluster, pytestconfig: pytest.Config) -> str:
    """pytest-helm-charts' kube_cluster reads --kubeconfig: point it at our control plane."""
    pytestconfig.option.kubeconfig = str(control_plane.kubeconfig)
    return str(control_plane.kubeconfig)


@pytest.fixture(scope="session")
def api_client(kube_config: str) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=kube_config)
