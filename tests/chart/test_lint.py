"""helm lint, chart-testing, kubeconform, the generated README and the values' documentation."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from tests.chart.helm import (
    CHART,
    EXAMPLES,
    ci_files,
    ct_install_files,
    example_files,
    helm,
    lint_only_files,
    render_text,
)
from tests.harness.tools import REPO, tool

REQUIRED_EXAMPLES = {
    "minimal",
    "production",
    "external-dns",
    "reverse-zones",
    "loadbalancer",
    "existing-zones-configmap",
    "fast-failover",
}


def leaf_paths(values: Any, prefix: str = "") -> list[str]:
    """Dotted paths of the values' leaves (an empty map or list is a leaf)."""
    if isinstance(values, dict) and values:
        paths = []
        for key, value in values.items():
            paths += leaf_paths(value, f"{prefix}{key}.")
        return paths
    return [prefix.rstrip(".")]


def default_values() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return values


def test_helm_lint_strict_passes() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("values", ci_files(), ids=lambda path: path.name)
def test_helm_lint_strict_passes_with_ci_values(values: pathlib.Path) -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(values))
    assert "0 chart(s) failed" in result.stdout


def ct_lint(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [tool("ct"), "lint", "--config", "ct.yaml", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"ct lint failed:\n{result.stdout}\n{result.stderr}"
    assert "All charts linted successfully" in result.stdout
    return result


def test_ct_lint_passes() -> None:
    result = ct_lint("--all")
    # ct must have linted the chart with every ci/*-values.yaml file, and seen nothing else
    for values in ct_install_files():
        assert f"chart/ci/{values.name}" in result.stdout
    for values in lint_only_files():
        assert values.name not in result.stdout, f"{values.name} must stay out of ct install"


def test_ct_lint_passes_with_the_lint_only_values(tmp_path: pathlib.Path) -> None:
    """ci/lint-only/ holds cases ct install cannot run (ct picks up ci/*-values.yaml alone):
    ct lints them from a copy of the chart that has them in its ci/."""
    assert lint_only_files(), "chart/ci/lint-only holds no values files"
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.rmtree(copy / "ci")
    (copy / "ci").mkdir()
    for values in lint_only_files():
        shutil.copy(values, copy / "ci" / values.name)
    result = ct_lint("--charts", str(copy))
    for values in lint_only_files():
        assert f"ci/{values.name}" in result.stdout


def test_kube_version_constraint() -> None:
    """kubeVersion >=1.30 (native sidecars; ValidatingAdmissionPolicy v1): 1.30 renders, 1.29 is refused."""
    assert "kind: ValidatingAdmissionPolicy" in render_text(extra=["--kube-version", "1.30.0"])
    refused = helm("template", "test", str(CHART), "--kube-version", "1.29.9", check=False)
    assert refused.returncode != 0 and "kubeVersion" in refused.stderr


def test_ci_values_files_are_picked_up_by_ct() -> None:
    """ct silently ignores ci files not named *-values.yaml (lint-only/ is ignored on purpose)."""
    files = sorted(path.name for path in (CHART / "ci").iterdir() if path.name != "lint-only")
    assert files, "chart/ci holds no values files"
    assert all(name.endswith("-values.yaml") for name in files), files
    assert all(path.name.endswith("-values.yaml") for path in (CHART / "ci" / "lint-only").iterdir())


@pytest.mark.parametrize(
    "values", [None, *example_files(), *ci_files()], ids=lambda p: "defaults" if p is None else p.name
)
def test_renders_and_passes_kubeconform_strict(
    values: pathlib.Path | None, kubeconform_schemas: pathlib.Path
) -> None:
    manifest = render_text(files=[values] if values else [])
    kinds = [doc["kind"] for doc in yaml.safe_load_all(manifest) if doc]
    result = kubeconform(
        manifest, kubeconform_schemas, "-summary", "-output", "json", "-skip", "ServiceMonitor"
    )
    assert result.returncode == 0, f"kubeconform rejected the manifests:\n{result.stdout}\n{result.stderr}"
    summary = json.loads(result.stdout)["summary"]
    skipped = kinds.count("ServiceMonitor")
    assert summary == {"valid": len(kinds) - skipped, "invalid": 0, "errors": 0, "skipped": skipped}


def kubeconform(manifest: str, schemas: pathlib.Path, *options: str) -> subprocess.CompletedProcess[str]:
    """kubeconform -strict against the offline schemas, reading manifests from stdin."""
    location = f"{schemas}/{{{{ .ResourceKind }}}}{{{{ .KindSuffix }}}}.json"
    return subprocess.run(
        [tool("kubeconform"), "-strict", *options, "-schema-location", location, "-"],
        input=manifest,
        capture_output=True,
        text=True,
        check=False,
    )


def test_kubeconform_catches_an_invalid_manifest(kubeconform_schemas: pathlib.Path) -> None:
    """The offline schemas really validate (an unknown field fails under -strict)."""
    manifest = render_text().replace(
        "podManagementPolicy: Parallel", "podManagementPolicy: Parallel\n  bogus: 1"
    )
    result = kubeconform(manifest, kubeconform_schemas)
    assert result.returncode != 0
    assert "additional properties 'bogus' not allowed" in result.stdout


def test_chart_readme_is_generated_from_values(tmp_path: pathlib.Path) -> None:
    """chart/README.md is what helm-docs makes of values.yaml and README.md.gotmpl now."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy, ignore=shutil.ignore_patterns("files", "__pycache__"))
    (copy / "README.md").unlink()
    subprocess.run(
        [tool("helm-docs"), "--chart-search-root", str(copy), "--log-level", "warning"],
        check=True,
        capture_output=True,
        text=True,
    )
    generated = (copy / "README.md").read_text()
    assert generated == (CHART / "README.md").read_text(), (
        "chart/README.md is stale: run `helm-docs --chart-search-root chart` and commit it"
    )


def documented_values() -> set[str]:
    readme = (CHART / "README.md").read_text()
    return set(re.findall(r"^\| ([A-Za-z0-9_.]+) \|", readme, flags=re.MULTILINE))


def documenting_row(path: str, rows: set[str]) -> str | None:
    """The README row documenting this leaf: itself or its nearest documented parent."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in rows:
            return ".".join(parts[:end])
    return None


def test_every_value_is_documented() -> None:
    """Every value (or the object holding it) has a helm-docs `# --` comment: a README table row."""
    rows = documented_values()
    missing = [path for path in leaf_paths(default_values()) if documenting_row(path, rows) is None]
    assert not missing, f"values without a `# --` comment: {missing}"


def test_every_value_is_used_by_a_template() -> None:
    """No dead values: the key of every documented value is read by some template."""
    templates = "\n".join(path.read_text() for path in (CHART / "templates").rglob("*") if path.is_file())
    rows = documented_values()
    unused = sorted(
        row
        for row in {documenting_row(path, rows) for path in leaf_paths(default_values())}
        if row is not None and not re.search(rf"\.{re.escape(row.split('.')[-1])}\b", templates)
    )
    assert not unused, f"values no template reads: {unused}"


def test_schema_declares_exactly_the_values() -> None:
    """values.schema.json is strict everywhere the chart owns the shape, and matches values.yaml."""
    schema = json.loads((CHART / "values.schema.json").read_text())

    def check(node: dict[str, Any], values: Any, where: str) -> None:
        if node.get("type") != "object" or "properties" not in node:
            return
        assert node.get("additionalProperties") is False, f"{where or '(top)'} allows unknown keys"
        declared = set(node["properties"]) - {"global"}
        if not values:  # an empty map in values.yaml: its keys are optional
            return
        assert declared == set(values), (
            f"{where or '(top)'}: schema {sorted(declared)} != values {sorted(values)}"
        )
        for key, child in node["properties"].items():
            if key in values and isinstance(values[key], dict):
                check(child, values[key], f"{where}.{key}".lstrip("."))

    check(schema, default_values(), "")
    zone = schema["properties"]["zones"]["items"]
    assert zone["additionalProperties"] is False
    assert set(zone["properties"]) == {"name", "type", "ttl", "soa", "nameservers", "records", "file"}
    assert zone["properties"]["soa"]["additionalProperties"] is False


def test_zone_schema_matches_the_agents_zone_model() -> None:
    from bind_ha import zonemodel

    zone = json.loads((CHART / "values.schema.json").read_text())["properties"]["zones"]["items"]
    assert set(zone["properties"]) == zonemodel.ZONE_KEYS
    assert set(zone["properties"]["soa"]["properties"]) == set(zonemodel.SOA_FIELDS)
    assert zone["properties"]["type"]["enum"] == list(zonemodel.ZONE_TYPES)


def test_values_yaml_is_well_under_1000_lines() -> None:
    assert len((CHART / "values.yaml").read_text().splitlines()) < 500


def test_optional_features_are_off_by_default() -> None:
    values = default_values()
    assert values["persistence"]["enabled"] is False
    assert values["networkPolicy"]["enabled"] is False
    assert values["metrics"]["enabled"] is False
    assert values["metrics"]["exporter"]["enabled"] is False
    assert values["metrics"]["serviceMonitor"]["enabled"] is False
    assert values["zones"] == [] and not values["zonesConfigMap"] and not values["zonesVolume"]


def test_values_examples_are_complete_and_explained() -> None:
    names = {path.stem for path in example_files()}
    assert names >= REQUIRED_EXAMPLES, f"missing examples: {sorted(REQUIRED_EXAMPLES - names)}"
    for path in example_files():
        header = []
        for line in path.read_text().splitlines():
            if not line.startswith("#"):
                break
            header.append(line)
        assert len(header) >= 3, f"{path.name}: needs a comment header saying when to use it"
        assert "When to use it" in "\n".join(header), f"{path.name}: the header must say when to use it"


def test_yaml_files_pass_yamllint() -> None:
    """The repository's yamllint rules, on the chart's values, the examples and ct's files."""
    targets = [
        CHART / "values.yaml",
        CHART / "Chart.yaml",
        CHART / "ci",
        EXAMPLES,
        REPO / "ct.yaml",
        REPO / ".ci" / "ct",
    ]
    result = subprocess.run(
        [tool("yamllint"), "-s", "-c", str(REPO / ".yamllint.yaml"), *map(str, targets)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
