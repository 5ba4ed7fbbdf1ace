"""Finding a release and reading what status needs: its pods and its Lease.

The chart labels everything with app.kubernetes.io/name=bind-ha and
app.kubernetes.io/instance=RELEASE; the server pods also carry component=server.
The Lease's name and the agents' timing come from the pods' own environment (what
the chart set), or from the chart's naming rules when no pod says.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bind_ha import clients as tsig_clients
from bind_ha import leasenotes, requests
from bind_ha.cli import names
from bind_ha.cli.api import Api, CommandError
from bind_ha.cli.clients import PRESET_FOR_CLIENT, SECRET_KEY, ClientSettings
from bind_ha.cli.model import DEFAULT_RENEW_DEADLINE, LeaseView, PodView, ReleaseView
from bind_ha.peers import Status
from bind_ha.settings import ENVIRONMENT

NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
COMPONENT_LABEL = "app.kubernetes.io/component"
CHART_SELECTOR = f"{NAME_LABEL}=bind-ha"


def release_selector(release: str) -> str:
    return f"{CHART_SELECTOR},{INSTANCE_LABEL}={release}"


def server_selector(release: str) -> str:
    return f"{release_selector(release)},{COMPONENT_LABEL}=server"


def find_release(api: Api, wanted: str | None) -> str:
    """The release named, or the only one in the namespace; CommandError otherwise."""
    pods = api.list_pods(f"{CHART_SELECTOR},{COMPONENT_LABEL}=server")
    found = sorted({str((pod.metadata.labels or {}).get(INSTANCE_LABEL, "")) for pod in pods} - {""})
    if wanted is not None:
        if wanted not in found and not _has_lease(api, wanted):
            listed = ", ".join(found) if found else "none"
            raise CommandError(
                f"no bind-ha release {wanted} in namespace {api.namespace} (releases: {listed})"
            )
        return wanted
    if len(found) == 1:
        return found[0]
    if not found:
        raise CommandError(f"no bind-ha release in namespace {api.namespace} (pass -n NAMESPACE)")
    raise CommandError(
        f"{len(found)} bind-ha releases in namespace {api.namespace}: {', '.join(found)}; name one"
    )


def _has_lease(api: Api, release: str) -> bool:
    """A release whose pods are all gone still has its Lease (an operator may lack the right to read
    the Lease of a release that does not exist: that is a no too)."""
    try:
        return api.read_lease(names.lease_name(release)) is not None
    except CommandError:
        return False


def _env(pod: Any) -> dict[str, str]:
    """Plain-valued environment variables of every container of a pod (or pod template)."""
    spec = pod.spec
    containers = list(spec.init_containers or []) + list(spec.containers or []) if spec else []
    values: dict[str, str] = {}
    for container in containers:
        for variable in container.env or []:
            if variable.value is not None:
                values.setdefault(variable.name, variable.value)
    return values


def _ready(pod: Any) -> bool:
    conditions = pod.status.conditions if pod.status else None
    return any(c.type == "Ready" and c.status == "True" for c in conditions or [])


def pod_view(pod: Any, prefix: str) -> PodView:
    labels = pod.metadata.labels or {}
    annotations = pod.metadata.annotations or {}
    return PodView(
        name=pod.metadata.name,
        uid=pod.metadata.uid or "",
        node=pod.spec.node_name if pod.spec else None,
        ip=pod.status.pod_ip if pod.status else None,
        role=labels.get(f"{prefix}/role"),
        ready=_ready(pod),
        deleting=pod.metadata.deletion_timestamp is not None,
        status=Status.from_json(annotations.get(f"{prefix}/status")),
    )


def lease_view(lease: Any, prefix: str) -> LeaseView:
    spec = lease.spec
    return LeaseView(
        name=lease.metadata.name,
        holder=spec.holder_identity or "",
        duration=int(spec.lease_duration_seconds or 0),
        acquire_time=spec.acquire_time,
        renew_time=spec.renew_time,
        transitions=int(spec.lease_transitions or 0),
        version=str(lease.metadata.resource_version),
        requests=requests.read(lease.metadata.annotations, requests.Keys(prefix)),
        with_data=leasenotes.read(lease.metadata.annotations or {}, prefix)[0].zones_with_data,
    )


@dataclass(frozen=True)
class Wiring:
    """What the chart told the agents, as far as the pods show it."""

    lease_name: str
    prefix: str
    renew_deadline: float


def wiring(release: str, pods: Iterable[Any]) -> Wiring:
    env: dict[str, str] = {}
    for pod in pods:
        env = _env(pod)
        if env:
            break
    try:
        deadline = float(env.get("BIND_HA_RENEW_DEADLINE", DEFAULT_RENEW_DEADLINE))
    except ValueError:
        deadline = DEFAULT_RENEW_DEADLINE
    return Wiring(
        lease_name=env.get("BIND_HA_LEASE_NAME") or names.lease_name(release),
        prefix=env.get("BIND_HA_LABEL_PREFIX") or requests.DEFAULT_PREFIX,
        renew_deadline=deadline if deadline > 0 else DEFAULT_RENEW_DEADLINE,
    )


def read_release(api: Api, release: str) -> tuple[ReleaseView, Wiring]:
    """The release's server pods and its Lease, as status sees them."""
    pods = sorted(api.list_pods(server_selector(release)), key=lambda pod: str(pod.metadata.name))
    wired = wiring(release, pods)
    lease = api.read_lease(wired.lease_name)
    view = ReleaseView(
        release=release,
        namespace=api.namespace,
        lease_name=wired.lease_name,
        pods=tuple(pod_view(pod, wired.prefix) for pod in pods),
        lease=None if lease is None else lease_view(lease, wired.prefix),
        renew_deadline=wired.renew_deadline,
    )
    return view, wired


# ---- client-config: the StatefulSet's settings and the primary Service -------------------


def _template_env(statefulset: Any) -> dict[str, str]:
    return _env(statefulset.spec.template)


def _tsig_secret(statefulset: Any) -> str | None:
    for volume in statefulset.spec.template.spec.volumes or []:
        if volume.name == "tsig" and volume.secret is not None:
            return str(volume.secret.secret_name)
    return None


def _external(service: Any, port: int) -> str | None:
    """Where clients outside the cluster reach the primary, when the Service offers a way."""
    status = service.status.load_balancer if service.status else None
    ingress = (status.ingress or []) if status else []
    if service.spec.type == "LoadBalancer" and ingress:
        return f"{ingress[0].ip or ingress[0].hostname} port {port}"
    node_port = service.spec.ports[0].node_port if service.spec.type in ("NodePort", "LoadBalancer") else None
    return f"any node's address, port {node_port}" if node_port else None


def _one(found: list[Any], what: str, release: str) -> Any:
    if len(found) != 1:
        raise CommandError(f"expected one {what} of release {release}, found {len(found)}")
    return found[0]


def client_settings(
    api: Api, release: str, *, zones: tuple[str, ...], client: str | None = None, key: str | None = None
) -> ClientSettings:
    """What a client needs, from the StatefulSet's template (env, volumes) and the primary Service.

    The key is `key` when given (the update key's name or a tsig.clients entry), else the one
    narrowed key whose preset fits the client (PRESET_FOR_CLIENT), else the update key."""
    selector = release_selector(release)
    statefulset = _one(
        [
            s
            for s in api.list_statefulsets(selector)
            if (s.metadata.labels or {}).get(COMPONENT_LABEL) == "server"
        ],
        "StatefulSet",
        release,
    )
    env = _template_env(statefulset)
    prefix = env.get("BIND_HA_LABEL_PREFIX") or requests.DEFAULT_PREFIX
    service = _one(
        [
            s
            for s in api.list_services(selector)
            if (s.spec.selector or {}).get(f"{prefix}/role") == "primary"
        ],
        "primary Service",
        release,
    )
    secret = _tsig_secret(statefulset)
    if secret is None:
        raise CommandError(f"the StatefulSet {statefulset.metadata.name} mounts no TSIG Secret (volume tsig)")
    port = int(service.spec.ports[0].port)
    update_key = env.get("BIND_HA_UPDATE_KEY_NAME") or _default("BIND_HA_UPDATE_KEY_NAME")
    key_name, secret_key = choose_key(env.get("BIND_HA_TSIG_CLIENTS", ""), update_key, client, key)
    return ClientSettings(
        release=release,
        namespace=api.namespace,
        service=service.metadata.name,
        port=port,
        key_name=key_name,
        secret_key=secret_key,
        algorithm=env.get("BIND_HA_TSIG_ALGORITHM") or _default("BIND_HA_TSIG_ALGORITHM"),
        secret_name=secret,
        zones=zones,
        external=_external(service, port),
    )


def choose_key(clients_json: str, update_key: str, client: str | None, wanted: str | None) -> tuple[str, str]:
    """(key name, the TSIG Secret's data key) a client should use; CommandError for an unknown key."""
    try:
        declared = tsig_clients.parse_clients(clients_json)
        presets = [entry.get("preset") for entry in json.loads(clients_json or "[]")]
    except (tsig_clients.ClientError, ValueError, AttributeError):
        raise CommandError("the StatefulSet's BIND_HA_TSIG_CLIENTS is not a valid list of clients") from None
    if wanted is not None:
        if wanted.rstrip(".") == update_key.rstrip("."):
            return update_key, SECRET_KEY
        for entry in declared:
            if entry.name == wanted.rstrip(".").lower():
                return entry.name, entry.secret_file
        known = ", ".join([update_key, *(entry.name for entry in declared)])
        raise CommandError(f"--key {wanted!r}: the release has no such key (it has {known})")
    fitting = [
        entry
        for entry, preset in zip(declared, presets, strict=True)
        if preset == PRESET_FOR_CLIENT.get(client or "")
    ]
    if len(fitting) == 1:
        return fitting[0].name, fitting[0].secret_file
    return update_key, SECRET_KEY


def _default(variable: str) -> str:
    return str(ENVIRONMENT[variable][1])
