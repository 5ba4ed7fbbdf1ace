"""Fixtures for agent integration tests: local pods against the real control plane."""

from __future__ import annotations

import pathlib
import uuid
from collections.abc import Iterator

import kubernetes
import pytest

from tests.harness.cluster import LocalCluster
from tests.harness.named import LoopbackAllocator
from tests.harness.pods import LocalRelease

EXAMPLE_ZONES: list[dict[str, object]] = [
    {
        "name": "example.test",
        "type": "static",
        "ttl": 300,
        "soa": {"mname": "ns1.example.test.", "rname": "hostmaster.example.test."},
        "nameservers": ["ns1.example.test."],
        "records": "ns1 IN A 192.0.2.1\nwww IN A 192.0.2.80\n",
    },
    {"name": "dyn.test", "type": "dynamic", "ttl": 60, "nameservers": ["ns1.example.test."]},
]


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
