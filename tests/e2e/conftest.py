"""The e2e tier: the chart's real pods on a real one-node cluster (tests/harness/node.py).

One node for the whole session, started in a network namespace of its own (the run
already is in one: .ci/isolated), with the image `make image` built imported into its
containerd. pytest-helm-charts' kube_cluster (cluster type "existing") points at it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from tests.harness import processes
from tests.harness.node import Node, bind_ha_image
from tests.harness.release import ClientPod, Kube
from tests.harness.tools import REPO

# Durations (seconds) worth reporting, and other measurements (as text): printed at the end.
TIMINGS: dict[str, float] = {}
MEASURED: dict[str, str] = {}


def require_current_image() -> None:
    """The image must be what images/ describes: `make test` builds it before the tests
    (the build needs the Debian mirror, which the tests' namespace cannot reach)."""
    check = subprocess.run(
        [str(REPO / ".ci" / "buildah.sh"), "check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr or check.stdout


@pytest.fixture(scope="session")
def node() -> Iterator[Node]:
    require_current_image()
    node = Node(host_port=processes.free_port())
    node.up()
    TIMINGS["node: start to node Ready"] = node.timings["node Ready"]
    TIMINGS["node: start to CoreDNS Ready"] = node.timings["total"]
    try:
        yield node
    finally:
        node.down()


@pytest.fixture(scope="session")
def kube_config(node: Node, pytestconfig: pytest.Config) -> str:
    """pytest-helm-charts' kube_cluster reads --kubeconfig: the node's, through its forwarder."""
    assert pytestconfig.getoption("cluster_type") == "existing"
    pytestconfig.option.kubeconfig = str(node.host_kubeconfig)
    return str(node.host_kubeconfig)


@pytest.fixture(scope="session")
def kube(kube_config: str) -> Kube:
    return Kube(kube_config)


@pytest.fixture(scope="session")
def image() -> str:
    return bind_ha_image()


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    """A namespace enforcing the `restricted` Pod Security Standard, deleted afterwards."""
    name = kube.restricted_namespace("e2e")
    yield name
    kube.delete_namespace(name)


@pytest.fixture
def client(kube: Kube, namespace: str, image: str) -> Iterator[ClientPod]:
    pod = ClientPod(kube, namespace, image).start()
    yield pod
    pod.delete()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TIMINGS:
        terminalreporter.section("e2e timings")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{seconds:7.1f}s  {what}")
    if MEASURED:
        terminalreporter.section("e2e measurements")
        for what, value in MEASURED.items():
            terminalreporter.write_line(f"{what}: {value}")
