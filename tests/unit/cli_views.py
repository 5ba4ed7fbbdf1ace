"""Small factories of what `bind-ha status` sees, for the CLI's unit tests."""

from __future__ import annotations

import datetime
import pathlib
from dataclasses import replace

from bind_ha import requests
from bind_ha.cli.model import LeaseView, PodView, ReleaseView
from bind_ha.peers import Status

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.UTC)


def pod(
    name: str,
    *,
    role: str | None = "secondary",
    serials: dict[str, int] | None = None,
    healthy: bool = True,
    ready: bool = True,
    deleting: bool = False,
    published: bool = True,
) -> PodView:
    return PodView(
        name=name,
        uid=f"uid-{name}",
        node="node-1",
        ip="10.0.0.1",
        role=role,
        ready=ready,
        deleting=deleting,
        status=Status(healthy=healthy, serials=serials if serials is not None else {"dyn.test": 1002})
        if published
        else None,
    )


def lease(
    holder: str | None = "p-0",
    *,
    renewed_ago: float = 1.0,
    duration: int = 10,
    annotations: dict[str, str] | None = None,
) -> LeaseView:
    return LeaseView(
        name="dns-bind-ha-leader",
        holder=f"{holder}/uid-{holder}" if holder else "",
        duration=duration,
        acquire_time=NOW - datetime.timedelta(minutes=5),
        renew_time=NOW - datetime.timedelta(seconds=renewed_ago),
        transitions=2,
        version="42",
        requests=requests.read(annotations),
    )


def release(*pods: PodView, lease_view: LeaseView | None = None, renew_deadline: float = 7.0) -> ReleaseView:
    return ReleaseView(
        release="dns",
        namespace="dns",
        lease_name="dns-bind-ha-leader",
        pods=pods,
        lease=lease_view,
        renew_deadline=renew_deadline,
    )


def healthy(serials: dict[str, int] | None = None) -> ReleaseView:
    """A primary p-0 and two secondaries in step with it."""
    serials = serials or {"dyn.test": 1002, "example.test": 7}
    return release(
        pod("p-0", role="primary", serials=serials),
        pod("p-1", serials=dict(serials)),
        pod("p-2", serials=dict(serials)),
        lease_view=lease("p-0"),
    )


def with_pod(view: ReleaseView, name: str, **changes: object) -> ReleaseView:
    pods = tuple(replace(p, **changes) if p.name == name else p for p in view.pods)  # type: ignore[arg-type]
    return replace(view, pods=pods)


def write_kubeconfig(path: pathlib.Path, server: str, *, namespace: str | None = None) -> pathlib.Path:
    """A minimal kubeconfig with one context, a, for server."""
    context = f"{{cluster: c, user: u{', namespace: ' + namespace if namespace else ''}}}"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: a\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}', insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        f"contexts: [{{name: a, context: {context}}}]\n"
    )
    return path
