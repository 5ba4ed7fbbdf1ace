"""Fixtures of the chart tier."""

from __future__ import annotations

import pathlib

import pytest

from tests.harness.tools import SCHEMAS, versions


@pytest.fixture(scope="session")
def kubeconform_schemas() -> pathlib.Path:
    """The offline Kubernetes schemas `make setup` derives (.ci/offline_schemas.py)."""
    source = SCHEMAS / f"v{versions()['SCHEMA_KUBERNETES_VERSION']}-standalone-strict"
    assert (source / "_definitions.json").is_file(), f"offline schemas missing in {source}: run `make setup`"
    return source
