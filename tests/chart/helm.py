"""Rendering the chart with the pinned helm, and reading what it rendered.

Shared by the chart tier (tests/chart) and the API-server tier (tests/apiserver).
"""

from __future__ import annotations

import functools
import json
import pathlib
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from tests.harness.tools import REPO, tool

CHART = REPO / "chart"
EXAMPLES = REPO / "values-examples"
CI_VALUES = CHART / "ci"
RELEASE = "test"
NAMESPACE = "dns"
FULLNAME = f"{RELEASE}-bind-ha"
SELECTOR_LABELS = {
    "app.kubernetes.io/name": "bind-ha",
    "app.kubernetes.io/instance": RELEASE,
    "app.kubernetes.io/component": "server",
}
ROLE_LABEL = "bind-ha.io/role"

# The agent's package, for cross-checks against settings.ENVIRONMENT and zonemodel.
if str(REPO / "python") not in sys.path:
    sys.path.insert(0, str(REPO / "python"))


def helm(*args: str, check: bool = True, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([tool("helm"), *args], capture_output=True, text=True, check=False, cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def values_file(values: Mapping[str, Any], directory: pathlib.Path) -> pathlib.Path:
    path = directory / "values.yaml"
    path.write_text(yaml.safe_dump(dict(values), sort_keys=False))
    return path


def _template_args(
    values: Mapping[str, Any] | None,
    files: Sequence[pathlib.Path],
    directory: pathlib.Path,
    extra: Sequence[str],
    chart: pathlib.Path,
) -> list[str]:
    args = ["template", RELEASE, str(chart), "--namespace", NAMESPACE]
    for path in files:
        args += ["-f", str(path)]
    if values:
        args += ["-f", str(values_file(values, directory))]
    return [*args, *extra]


@dataclass(frozen=True)
class Manifests:
    """The documents helm rendered, with lookups by kind and name."""

    documents: tuple[dict[str, Any], ...]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.documents)

    def kinds(self) -> list[str]:
        return sorted(doc["kind"] for doc in self.documents)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def get(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [doc for doc in self.all(kind) if name is None or doc["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}: {self.kinds()}"
        return found[0]

    def has(self, kind: str, name: str | None = None) -> bool:
        return any(name is None or doc["metadata"]["name"] == name for doc in self.all(kind))

    # The objects most tests look at.
    @property
    def statefulset(self) -> dict[str, Any]:
        return self.get("StatefulSet")

    @property
    def pod_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self.statefulset["spec"]["template"]["spec"]
        return spec

    def container(self, name: str) -> dict[str, Any]:
        spec = self.pod_spec
        found: list[dict[str, Any]] = [
            c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name
        ]
        assert len(found) == 1, f"no container {name}"
        return found[0]

    def env(self, container: str) -> dict[str, Any]:
        """name -> value, or name -> the fieldPath of a downward-API variable."""
        result: dict[str, Any] = {}
        for item in self.container(container).get("env", []):
            if "value" in item:
                result[item["name"]] = item["value"]
            else:
                result[item["name"]] = {"fieldPath": item["valueFrom"]["fieldRef"]["fieldPath"]}
        return result

    def scripts(self, kind: str) -> dict[str, Any]:
        """The immutable ConfigMap of the agent's package ("python") or its hooks ("hooks"),
        named after its content: FULLNAME-KIND-<10 hex digits>."""
        pattern = re.compile(rf"{re.escape(FULLNAME)}-{kind}-[0-9a-f]{{10}}")
        found = [doc for doc in self.all("ConfigMap") if pattern.fullmatch(doc["metadata"]["name"])]
        assert len(found) == 1, (
            f"expected one {kind} ConfigMap, found {[d['metadata']['name'] for d in found]}"
        )
        return found[0]

    @property
    def test_pod(self) -> dict[str, Any]:
        return self.get("Pod", f"{FULLNAME}-selftest")


def parse(text: str) -> Manifests:
    return Manifests(tuple(doc for doc in yaml.safe_load_all(text) if doc))


def render_text(
    values: Mapping[str, Any] | None = None,
    *,
    files: Sequence[pathlib.Path] = (),
    extra: Sequence[str] = (),
    chart: pathlib.Path = CHART,
) -> str:
    with tempfile.TemporaryDirectory() as directory:
        args = _template_args(values, files, pathlib.Path(directory), extra, chart)
        return helm(*args).stdout


@functools.cache
def _render_cached(key: str, files: tuple[str, ...], extra: tuple[str, ...]) -> Manifests:
    values = json.loads(key)
    return parse(render_text(values, files=[pathlib.Path(f) for f in files], extra=extra))


def render(
    values: Mapping[str, Any] | None = None, *, files: Sequence[pathlib.Path] = (), extra: Sequence[str] = ()
) -> Manifests:
    """helm template with these values (cached: the same values render once per session)."""
    return _render_cached(
        json.dumps(values or {}, sort_keys=True), tuple(str(f) for f in files), tuple(extra)
    )


def render_error(values: Mapping[str, Any], *, extra: Sequence[str] = ()) -> str:
    """helm template must fail: returns its error output."""
    with tempfile.TemporaryDirectory() as directory:
        args = _template_args(values, (), pathlib.Path(directory), extra, CHART)
        result = helm(*args, check=False)
    assert result.returncode != 0, f"helm template accepted bad values {values}"
    return result.stderr


def example_files() -> list[pathlib.Path]:
    return sorted(EXAMPLES.glob("*.yaml"))


def ct_install_files() -> list[pathlib.Path]:
    """What `ct install` (and `ct lint`) pick up: ci/*-values.yaml."""
    return sorted(CI_VALUES.glob("*-values.yaml"))


def lint_only_files() -> list[pathlib.Path]:
    """Cases that only lint (ct never sees them; the chart tier lints them with ct)."""
    return sorted((CI_VALUES / "lint-only").glob("*-values.yaml"))


def ci_files() -> list[pathlib.Path]:
    """Every ci values file: each is linted, rendered and validated."""
    return [*ct_install_files(), *lint_only_files()]


def pod_specs(manifests: Manifests) -> list[tuple[str, dict[str, Any]]]:
    """(what, pod spec) of every pod the release makes: the StatefulSet's and the test pod."""
    return [
        (f"StatefulSet {manifests.statefulset['metadata']['name']}", manifests.pod_spec),
        (f"Pod {manifests.test_pod['metadata']['name']}", manifests.test_pod["spec"]),
    ]


def all_containers(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


MINIMAL_ZONES: list[dict[str, Any]] = [
    {
        "name": "example.com",
        "ttl": 300,
        "nameservers": ["ns1.example.com."],
        "records": "ns1 IN A 192.0.2.53\n",
    }
]
