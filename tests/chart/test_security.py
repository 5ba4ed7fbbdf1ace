"""Security defaults: every pod of every example meets the `restricted` Pod Security Standard."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import pytest

from tests.chart.helm import all_containers, ci_files, example_files, pod_specs, render

HOST_FIELDS = ("hostNetwork", "hostPID", "hostIPC", "hostUsers")


def pod_problems(spec: dict[str, Any]) -> list[str]:
    """What the `restricted` level forbids at the pod level."""
    pod = spec.get("securityContext", {})
    checks = {
        "pod: runAsNonRoot is not true": pod.get("runAsNonRoot") is not True,
        "pod: runs as root": pod.get("runAsUser", 1) == 0 or pod.get("runAsGroup", 1) == 0,
        "pod: seccompProfile is not RuntimeDefault": pod.get("seccompProfile", {}).get("type")
        != "RuntimeDefault",
    }
    problems = [problem for problem, failed in checks.items() if failed]
    problems += [f"pod: {field}" for field in HOST_FIELDS if spec.get(field) and field != "hostUsers"]
    problems += [f"volume {v['name']}: hostPath" for v in spec.get("volumes", []) if "hostPath" in v]
    return problems


def container_problems(container: dict[str, Any]) -> list[str]:
    """What the `restricted` level (and our read-only root) forbids in a container."""
    context = container.get("securityContext", {})
    capabilities = context.get("capabilities", {})
    checks = {
        "allowPrivilegeEscalation is not false": context.get("allowPrivilegeEscalation") is not False,
        "privileged": bool(context.get("privileged")),
        "root filesystem is writable": context.get("readOnlyRootFilesystem") is not True,
        "capabilities are not exactly drop ALL": capabilities.get("drop") != ["ALL"]
        or bool(capabilities.get("add")),
        "runs as root": context.get("runAsUser") == 0 or context.get("runAsNonRoot") is False,
        "hostPort": any(port.get("hostPort") for port in container.get("ports", [])),
    }
    return [f"container {container['name']}: {problem}" for problem, failed in checks.items() if failed]


def restricted_problems(spec: dict[str, Any]) -> list[str]:
    problems = pod_problems(spec)
    for container in all_containers(spec):
        problems += container_problems(container)
    return problems


@pytest.mark.parametrize(
    "values", [None, *example_files(), *ci_files()], ids=lambda p: "defaults" if p is None else p.name
)
def test_every_pod_is_restricted(values: pathlib.Path | None) -> None:
    manifests = render(files=[values] if values else [])
    for what, spec in pod_specs(manifests):
        assert restricted_problems(spec) == [], what


def test_defaults_run_as_the_images_unprivileged_user() -> None:
    context = render().pod_spec["securityContext"]
    assert context["runAsUser"] == 10001 and context["runAsGroup"] == 10001 and context["fsGroup"] == 10001
    image = (pathlib.Path(__file__).parents[2] / "images" / "Dockerfile").read_text()
    assert "ARG UID=10001" in image and "USER ${UID}:${GID}" in image


def test_the_check_itself_catches_root() -> None:
    """restricted_problems is not vacuous (the chart refuses these values: the spec is edited)."""
    spec = copy.deepcopy(render().pod_spec)
    spec["securityContext"]["runAsUser"] = 0
    for container in all_containers(spec):
        container["securityContext"]["privileged"] = True
    problems = restricted_problems(spec)
    assert "pod: runs as root" in problems
    assert any("privileged" in problem for problem in problems)


def test_writable_paths_are_volumes() -> None:
    """With a read-only root filesystem, everything written lives on a volume (tmp, run, data)."""
    manifests = render()
    for container in all_containers(manifests.pod_spec):
        mounts = {m["mountPath"] for m in container.get("volumeMounts", []) if not m.get("readOnly")}
        if container["name"] in ("init", "agent", "named"):
            assert {"/tmp", "/var/run/bind-ha", "/var/lib/bind-ha"} <= mounts, container["name"]
    test_mounts = {m["mountPath"] for m in manifests.test_pod["spec"]["containers"][0]["volumeMounts"]}
    assert "/tmp" in test_mounts


def test_secrets_are_mounted_read_only_and_private() -> None:
    manifests = render()
    tsig = next(v for v in manifests.pod_spec["volumes"] if v["name"] == "tsig")["secret"]
    assert tsig["defaultMode"] == 0o440
    for container in all_containers(manifests.pod_spec):
        for mount in container.get("volumeMounts", []):
            if mount["name"] in ("tsig", "kube-api-access"):
                assert mount["readOnly"] is True, (container["name"], mount["name"])
