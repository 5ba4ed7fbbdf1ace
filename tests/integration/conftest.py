"""Fixtures for agent integration tests: local pods against the real control plane."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import kubernetes
import pytest

from tests.harness.cluster import LocalCluster
from tests.harness.examples import EXAMPLE_ZONES
from tests.harness.monitor import PrimaryLabelMonitor
from tests.harness.named import LoopbackAllocator
from tests.harness.pods import LocalRelease


@pytest.fixture
def release(
    api_client: kubernetes.client.ApiClient,
    control_plane: LocalCluster,
    tmp_path: pathlib.Path,
    loopback: LoopbackAllocator,
) -> Iterator[LocalRelease]:
    local = LocalRelease(
        api_client=api_client,
        admin_kubeconfig=str(control_plane.kubeconfig),
        namespace=f"it-{uuid.uuid4().hex[:8]}",
        root=tmp_path / "release",
        allocator=loopback,
    )
    local.setup(EXAMPLE_ZONES)
    try:
        yield local
    finally:
        local.stop_all()


@pytest.fixture
def monitor(release: LocalRelease, api_client: kubernetes.client.ApiClient) -> Iterator[PrimaryLabelMonitor]:
    """The most pods ever labelled primary at once, for the whole test."""
    watcher = PrimaryLabelMonitor(api_client, release.namespace)
    watcher.start()
    try:
        yield watcher
    finally:
        watcher.stop()
