"""The command's Kubernetes adapter: connecting like kubectl, and the few calls it makes.

Every call carries a timeout and is never retried behind our back; failures become
CommandError (exit code 2) with a message that says what was attempted and why it
failed, and a 409 becomes Conflict (the caller re-reads and retries).
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import kubernetes
import yaml
from kubernetes.client.rest import ApiException

IN_CLUSTER_NAMESPACE = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
USAGE = 2  # exit code of usage, connection and permission errors


class CommandError(Exception):
    """The command cannot go on; the message is for the operator. Exit code USAGE."""


class Conflict(Exception):
    """A write carried an old resourceVersion (409): re-read and retry."""


@dataclass(frozen=True)
class Connection:
    client: kubernetes.client.ApiClient
    namespace: str
    server: str
    user: str | None  # the kubeconfig user entry, a fallback for "who asked"


def _kubeconfig_path(flag: str | None, env: Mapping[str, str]) -> str | None:
    """kubectl's order: --kubeconfig, then $KUBECONFIG (a list of files), then ~/.kube/config."""
    if flag:
        if not pathlib.Path(flag).expanduser().is_file():
            raise CommandError(f"--kubeconfig {flag}: no such file")
        return str(pathlib.Path(flag).expanduser())
    listed = env.get("KUBECONFIG", "")
    if listed:
        existing = [
            path for path in listed.split(os.pathsep) if path and pathlib.Path(path).expanduser().is_file()
        ]
        if not existing:
            raise CommandError(f"KUBECONFIG={listed}: none of these files exists")
        return os.pathsep.join(str(pathlib.Path(path).expanduser()) for path in existing)
    default = pathlib.Path(env.get("HOME", "~")).expanduser() / ".kube" / "config"
    return str(default) if default.is_file() else None


def connect(
    *,
    kubeconfig: str | None,
    context: str | None,
    namespace: str | None,
    env: Mapping[str, str],
) -> Connection:
    """A client configured as kubectl would be; in a pod without a kubeconfig, in-cluster."""
    configuration = kubernetes.client.Configuration()
    path = _kubeconfig_path(kubeconfig, env)
    user = None
    try:
        if path is not None:
            kubernetes.config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration, persist_config=False
            )
            contexts, current = kubernetes.config.list_kube_config_contexts(config_file=path)
            chosen = next((c for c in contexts if c["name"] == context), None) if context else current
            if chosen is None:
                raise CommandError(f"--context {context}: no such context in {path}")
            details = chosen.get("context") or {}
            namespace = namespace or details.get("namespace") or "default"
            user = details.get("user")
        elif env.get("KUBERNETES_SERVICE_HOST"):
            kubernetes.config.load_incluster_config(client_configuration=configuration)
            namespace = namespace or _in_cluster_namespace()
        else:
            raise CommandError("no kubeconfig: pass --kubeconfig, set KUBECONFIG, or create ~/.kube/config")
    except (
        kubernetes.config.ConfigException,
        yaml.YAMLError,
        OSError,
        ValueError,
        TypeError,
        KeyError,
    ) as error:
        where = f" from {path}" if path else ""
        raise CommandError(f"cannot load the Kubernetes configuration{where}: {error}") from None
    configuration.retries = False
    return Connection(kubernetes.client.ApiClient(configuration), namespace, configuration.host, user)


def _in_cluster_namespace() -> str:
    try:
        return IN_CLUSTER_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def _reason(error: ApiException) -> str:
    """The API server's own message (a Status object), else the HTTP reason."""
    try:
        message = json.loads(error.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or error.reason)


class Api:
    def __init__(self, connection: Connection, *, timeout: float) -> None:
        client = connection.client
        self.connection = connection
        self.namespace = connection.namespace
        self.timeout = (timeout / 2, timeout / 2)  # (connect, read): the client ignores a plain float
        self.core = kubernetes.client.CoreV1Api(client)
        self.leases = kubernetes.client.CoordinationV1Api(client)
        self.apps = kubernetes.client.AppsV1Api(client)
        self.auth = kubernetes.client.AuthenticationV1Api(client)

    def _call(self, what: str, function: Callable[..., Any], *args: Any, missing_ok: bool = False) -> Any:
        try:
            return function(*args, _request_timeout=self.timeout)
        except ApiException as error:
            if error.status == 404 and missing_ok:
                return None
            if error.status == 409:
                raise Conflict(what) from None
            if error.status in (401, 403):
                raise CommandError(
                    f"{what}: {'forbidden' if error.status == 403 else 'unauthorized'}: {_reason(error)} "
                    "(the operator Role, rbac.operator.create, grants what each command needs)"
                ) from None
            raise CommandError(f"{what}: HTTP {error.status}: {_reason(error)}") from None
        except Exception as error:  # urllib3: refused, timed out, TLS
            raise CommandError(
                f"{what}: cannot reach the API server at {self.connection.server}: "
                f"{type(error).__name__}: {error}"
            ) from None

    def list_pods(self, selector: str) -> list[Any]:
        def call(**kwargs: Any) -> Any:
            return self.core.list_namespaced_pod(self.namespace, label_selector=selector, **kwargs)

        return list(self._call(f"list pods in {self.namespace}", call).items)

    def read_lease(self, name: str) -> Any:
        return self._call(
            f"get Lease {self.namespace}/{name}",
            self.leases.read_namespaced_lease,
            name,
            self.namespace,
            missing_ok=True,
        )

    def patch_lease(self, name: str, body: Mapping[str, Any]) -> Any:
        return self._call(
            f"patch Lease {self.namespace}/{name}",
            self.leases.patch_namespaced_lease,
            name,
            self.namespace,
            dict(body),
        )

    def list_statefulsets(self, selector: str) -> list[Any]:
        def call(**kwargs: Any) -> Any:
            return self.apps.list_namespaced_stateful_set(self.namespace, label_selector=selector, **kwargs)

        return list(self._call(f"list StatefulSets in {self.namespace}", call).items)

    def list_services(self, selector: str) -> list[Any]:
        def call(**kwargs: Any) -> Any:
            return self.core.list_namespaced_service(self.namespace, label_selector=selector, **kwargs)

        return list(self._call(f"list Services in {self.namespace}", call).items)

    def create_event(self, body: Mapping[str, Any]) -> None:
        self._call(
            f"create Event in {self.namespace}", self.core.create_namespaced_event, self.namespace, dict(body)
        )

    def whoami(self) -> str | None:
        """The authenticated user name (SelfSubjectReview), or None when the server will not say."""
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        try:
            review = self._call("who am I", self.auth.create_self_subject_review, body)
        except CommandError:
            return None
        info = review.status.user_info if review and review.status else None
        return str(info.username) if info is not None and info.username else None
