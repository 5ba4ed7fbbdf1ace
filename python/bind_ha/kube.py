"""Kubernetes API adapter: the Lease, this release's pods, and Events.

Every call carries an explicit timeout (the election decides how long it may
take; never more than renewDeadline / 2). Writes use plain JSON bodies so
timestamps keep their microseconds and zone ("...T12:00:00.000000Z"), which the
API server requires for MicroTime. Events are posted from their own thread, so
a slow Event never delays a renewal.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import logging
import queue
import socket
import threading
from collections.abc import Callable
from typing import Any

import kubernetes
from kubernetes.client.rest import ApiException
from kubernetes.watch.watch import iter_resp_lines

from bind_ha.clock import Clock, SystemClock
from bind_ha.election import LeaseMeta, LeaseRecord
from bind_ha.peers import Peer, Status, parse_status
from bind_ha.settings import Settings

log = logging.getLogger("bind_ha.kube")
COMPONENT = "bind-ha-agent"
WATCH_SECONDS = 30  # the API server ends each pod watch after this; the cache then lists again
# A cache that saw no list, watch event or watch end for this long is stale (a half-open
# connection): rounds stop trusting it and it lists again.
STALE_AFTER = WATCH_SECONDS + 15
EVENT_QUEUE = 100  # Events waiting to be posted; more are dropped (and logged)


class Conflict(Exception):
    """The write lost a race (409 Conflict or AlreadyExists): re-read."""


class ApiUnavailable(Exception):
    """The API server did not answer in time or failed; the message says how."""


def micro_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def bounded(timeout: float) -> tuple[float, float]:
    """The client ignores a float timeout (it only honours an int or a (connect, read)
    pair), so every call gets a pair whose sum is the time it may take (no retries:
    see api_client)."""
    return (timeout / 2, timeout / 2)


def api_client(settings: Settings) -> kubernetes.client.ApiClient:
    """A client whose requests are never retried behind our back: urllib3 would otherwise
    retry a timed-out call three times, turning a 3.5 s budget into 14 s."""
    configuration = kubernetes.client.Configuration()
    if settings.kubeconfig:
        kubernetes.config.load_kube_config(
            config_file=settings.kubeconfig, client_configuration=configuration
        )
    else:
        kubernetes.config.load_incluster_config(client_configuration=configuration)
    configuration.retries = False
    return kubernetes.client.ApiClient(configuration)


def _call(
    what: str, function: Callable[..., Any], *args: Any, missing_ok: bool = False, **kwargs: Any
) -> Any:
    """Call the API; None for a 404 when missing_ok, Conflict for a 409, else ApiUnavailable."""
    try:
        return function(*args, **kwargs)
    except ApiException as error:
        if error.status == 404 and missing_ok:
            return None
        if error.status == 409:
            raise Conflict(f"{what}: conflict") from None
        raise ApiUnavailable(f"{what}: HTTP {error.status} {error.reason}") from None
    except Exception as error:  # urllib3 timeouts, refused connections, TLS errors
        raise ApiUnavailable(f"{what}: {type(error).__name__}: {error}") from None


def _record(spec: Any) -> LeaseRecord:
    return LeaseRecord(
        holder=spec.holder_identity or "",
        duration_seconds=int(spec.lease_duration_seconds or 0),
        acquire_time=spec.acquire_time,
        renew_time=spec.renew_time,
        transitions=int(spec.lease_transitions or 0),
    )


_bad_statuses: set[tuple[str, str]] = set()  # (pod UID, problem) already logged


def _address(raw: object) -> str | None:
    """A pod's IP, or None: it goes into named.conf, so it must be an address and nothing else."""
    try:
        return str(ipaddress.ip_address(raw)) if isinstance(raw, str) else None
    except ValueError:
        return None


def pod_to_peer(pod: Any, settings: Settings) -> Peer:
    labels = pod.metadata.labels or {}
    annotations = pod.metadata.annotations or {}
    status, problem = parse_status(annotations.get(settings.status_annotation))
    if problem is not None and (pod.metadata.uid, problem) not in _bad_statuses:
        _bad_statuses.add((pod.metadata.uid, problem))
        log.warning("pod %s: its status annotation counts as none: %s", pod.metadata.name, problem)
    return Peer(
        name=pod.metadata.name,
        uid=pod.metadata.uid,
        ip=_address(pod.status.pod_ip) if pod.status else None,
        role=labels.get(settings.role_label),
        status=status,
        deleting=pod.metadata.deletion_timestamp is not None,
        heartbeat=annotations.get(settings.heartbeat_annotation),
    )


class Kube:
    def __init__(self, settings: Settings, client: kubernetes.client.ApiClient) -> None:
        self.settings = settings
        self.leases = kubernetes.client.CoordinationV1Api(client)
        self.core = kubernetes.client.CoreV1Api(client)
        self.requests = 0  # API requests made, for the requests-per-minute metric

    def _lease_body(self, record: LeaseRecord, version: str | None, meta: LeaseMeta) -> dict[str, Any]:
        """The whole Lease: a PUT replaces labels and annotations, so both are carried over."""
        metadata: dict[str, Any] = {"name": self.settings.lease_name, "namespace": self.settings.namespace}
        if version:
            metadata["resourceVersion"] = version
        if meta.labels:
            metadata["labels"] = dict(meta.labels)
        if meta.annotations:
            metadata["annotations"] = dict(meta.annotations)
        spec: dict[str, Any] = {
            "holderIdentity": record.holder,
            "leaseDurationSeconds": record.duration_seconds,
            "leaseTransitions": record.transitions,
        }
        if record.acquire_time:
            spec["acquireTime"] = micro_time(record.acquire_time)
        if record.renew_time:
            spec["renewTime"] = micro_time(record.renew_time)
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": metadata, "spec": spec}

    def read_lease(self, timeout: float) -> tuple[LeaseRecord | None, str | None, LeaseMeta]:
        self.requests += 1
        lease = _call(
            "read Lease",
            self.leases.read_namespaced_lease,
            self.settings.lease_name,
            self.settings.namespace,
            missing_ok=True,
            _request_timeout=bounded(timeout),
        )
        if lease is None:
            return None, None, LeaseMeta()
        meta = LeaseMeta(
            labels=dict(lease.metadata.labels or {}), annotations=dict(lease.metadata.annotations or {})
        )
        return _record(lease.spec), lease.metadata.resource_version, meta

    def create_lease(self, record: LeaseRecord, meta: LeaseMeta, timeout: float) -> str:
        """Create is atomic: of several agents racing, one wins and the rest get Conflict."""
        self.requests += 1
        created = _call(
            "create Lease",
            self.leases.create_namespaced_lease,
            self.settings.namespace,
            self._lease_body(record, None, meta),
            _request_timeout=bounded(timeout),
        )
        return str(created.metadata.resource_version)

    def replace_lease(self, record: LeaseRecord, version: str | None, meta: LeaseMeta, timeout: float) -> str:
        """Write the leader record with the labels and annotations last read (`meta`): the
        resourceVersion makes the PUT fail with 409 when anyone wrote in between, so the
        operator's requests (bind_ha.requests) are never erased by a renewal."""
        self.requests += 1
        replaced = _call(
            "replace Lease",
            self.leases.replace_namespaced_lease,
            self.settings.lease_name,
            self.settings.namespace,
            self._lease_body(record, version, meta),
            _request_timeout=bounded(timeout),
        )
        return str(replaced.metadata.resource_version)

    def list_peers(self, timeout: float) -> list[Peer]:
        self.requests += 1
        pods = _call(
            "list pods",
            self.core.list_namespaced_pod,
            self.settings.namespace,
            label_selector=self.settings.peer_selector,
            _request_timeout=bounded(timeout),
        )
        return [pod_to_peer(pod, self.settings) for pod in pods.items]

    def set_role(self, pod: str, role: str, timeout: float) -> None:
        self.requests += 1
        _call(
            f"label pod {pod}",
            self.core.patch_namespaced_pod,
            pod,
            self.settings.namespace,
            {"metadata": {"labels": {self.settings.role_label: role}}},
            _request_timeout=bounded(timeout),
        )

    def publish_status(self, status: Status, timeout: float) -> None:
        self._annotate_own_pod("publish status", self.settings.status_annotation, status.to_json(), timeout)

    def heartbeat(self, beat: str, timeout: float) -> None:
        """The leader announces each Lease write on its pod: followers watching pods see it at once."""
        self._annotate_own_pod("heartbeat", self.settings.heartbeat_annotation, beat, timeout)

    def _annotate_own_pod(self, what: str, key: str, value: str, timeout: float) -> None:
        self.requests += 1
        _call(
            what,
            self.core.patch_namespaced_pod,
            self.settings.pod_name,
            self.settings.namespace,
            {"metadata": {"annotations": {key: value}}},
            _request_timeout=bounded(timeout),
        )

    def event(self, reason: str, message: str, *, warning: bool, timeout: float) -> None:
        """Post a Kubernetes Event on this pod; a failure is only logged (events are best effort).
        The agent posts through an EventPoster, never from a round."""
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "metadata": {"generateName": f"{self.settings.pod_name}.", "namespace": self.settings.namespace},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": self.settings.pod_name,
                "namespace": self.settings.namespace,
                "uid": self.settings.pod_uid,
            },
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.settings.pod_name,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        self.requests += 1
        try:
            _call(
                "post Event",
                self.core.create_namespaced_event,
                self.settings.namespace,
                body,
                _request_timeout=bounded(timeout),
            )
        except (Conflict, ApiUnavailable) as error:
            log.warning("event %s not posted: %s", reason, error)


class EventPoster(threading.Thread):
    """Posts Events from a queue of its own: a round only enqueues, so an API server that is
    slow to take an Event never costs a leader its renew budget."""

    def __init__(self, kube: Kube, timeout: float, stop: threading.Event) -> None:
        super().__init__(name="events", daemon=True)
        self.kube = kube
        self.timeout = timeout
        self.stop_event = stop
        self.pending: queue.Queue[tuple[str, str, bool]] = queue.Queue(maxsize=EVENT_QUEUE)

    def post(self, reason: str, message: str, warning: bool = False) -> None:
        try:
            self.pending.put_nowait((reason, message, warning))
        except queue.Full:
            log.warning("event %s dropped: %d events are still waiting to be posted", reason, EVENT_QUEUE)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                reason, message, warning = self.pending.get(timeout=0.5)
            except queue.Empty:
                continue
            self.kube.event(reason, message, warning=warning, timeout=self.timeout)


class PodCache(threading.Thread):
    """An informer for the release's pods: LIST, then WATCH from that version.

    Rounds read peers from here instead of listing every time. The agent is
    woken at once when something it acts on changes (a pod appears or goes, its
    IP, role label, deletion, or the leader's heartbeat), not when a peer only
    republishes its serials.

    A watch can go half-open (the connection silently stops delivering): the
    server ends every watch after WATCH_SECONDS and the cache lists again, so a
    cache that saw nothing for STALE_AFTER is stale. Rounds then list pods
    themselves, and invalidate() cuts the stuck connection so the cache lists
    again. The agent also calls invalidate() when the cache misses a renewal the
    Lease shows (see Agent._check_cache). Every LIST and the watch's connect
    carry the request timeout; only the watch's read may last longer (a long poll).
    """

    def __init__(
        self,
        settings: Settings,
        client: kubernetes.client.ApiClient,
        on_change: Callable[[bool], None],
        stop: threading.Event,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name="pod-cache", daemon=True)
        self.settings = settings
        self.core = kubernetes.client.CoreV1Api(client)
        self.decoder = kubernetes.watch.Watch()
        self.on_change = on_change
        self.stop_event = stop
        self.clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._pods: dict[str, Any] | None = None  # name -> pod, None until listed
        self._touched: float | None = None  # monotonic time of the last list, event or watch end
        self._response: Any = None  # the open watch, for invalidate()
        self.invalidations = 0

    def peers(self) -> list[Peer] | None:
        """The cached pods as peers, or None while the cache is not in sync (or stale)."""
        age = self.age()
        if age is not None and age > STALE_AFTER:
            self.invalidate(f"no list or watch event for {age:.0f}s")
            return None
        with self._lock:
            if self._pods is None:
                return None
            return [pod_to_peer(pod, self.settings) for pod in self._pods.values()]

    def age(self) -> float | None:
        """Seconds since the cache last heard from the API server; None before its first list."""
        with self._lock:
            touched = self._touched
        return None if touched is None else self.clock.monotonic() - touched

    def invalidate(self, reason: str) -> None:
        """Stop trusting the cache: rounds list pods themselves until it has listed again."""
        with self._lock:
            if self._pods is None:
                return
            self._pods = None
            response = self._response
        self.invalidations += 1
        log.warning("pod cache stale (%s): listing again; rounds list pods directly meanwhile", reason)
        if response is not None:
            _cut(response)

    def _touch(self) -> None:
        with self._lock:
            self._touched = self.clock.monotonic()

    def _relevant(self, pod: Any) -> tuple[object, ...]:
        """What a change must touch to wake the agent. Our own heartbeat is not news to us."""
        peer = pod_to_peer(pod, self.settings)
        own = peer.name == self.settings.pod_name
        return (peer.uid, peer.ip, peer.role, peer.deleting, None if own else peer.heartbeat)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._list_and_watch()
            except Exception as error:  # the rounds fall back to LIST while the cache is out of sync
                log.debug("pod watch interrupted: %s", error)
            with self._lock:
                self._pods = None
            self.stop_event.wait(1.0)

    def _list_and_watch(self) -> None:
        timeout = self.settings.timing.request_timeout
        listed = self.core.list_namespaced_pod(
            self.settings.namespace,
            label_selector=self.settings.peer_selector,
            _request_timeout=bounded(timeout),
        )
        with self._lock:
            self._pods = {pod.metadata.name: pod for pod in listed.items}
        self._touch()
        log.debug("listed %d pods: waking the agent", len(listed.items))
        self.on_change(False)
        response = self.core.list_namespaced_pod(
            self.settings.namespace,
            label_selector=self.settings.peer_selector,
            resource_version=listed.metadata.resource_version,
            watch=True,
            allow_watch_bookmarks=True,
            timeout_seconds=WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=(timeout / 2, WATCH_SECONDS + 5),
        )
        with self._lock:
            self._response = response
        try:
            for line in iter_resp_lines(response):
                event = self.decoder.unmarshal_event(line, "V1Pod")
                if self.stop_event.is_set() or self._pods is None:  # stopping, or invalidated
                    return
                if not isinstance(event, dict):
                    continue
                self._touch()
                if event["type"] == "ERROR":  # e.g. 410 Gone: the version is too old, list again
                    return
                if event["type"] != "BOOKMARK":
                    self._apply(event["type"], event["object"])
            self._touch()  # a watch that ends normally (timeout) is resumed by listing again
        finally:
            with self._lock:
                self._response = None
            response.close()
            response.release_conn()

    def _apply(self, kind: str, pod: Any) -> None:
        name = pod.metadata.name
        with self._lock:
            pods = self._pods if self._pods is not None else {}
            before = pods.get(name)
            if kind == "DELETED":
                pods.pop(name, None)
            else:
                pods[name] = pod
        if before is None or kind == "DELETED" or self._relevant(before) != self._relevant(pod):
            heartbeat = before is not None and self._relevant(before)[-1] != self._relevant(pod)[-1]
            log.debug(
                "pod %s %s: waking the agent%s", name, kind.lower(), " (heartbeat)" if heartbeat else ""
            )
            self.on_change(heartbeat)


def _cut(response: Any) -> None:
    """Shut down the socket of a response another thread is reading, so that read returns."""
    with contextlib.suppress(Exception):
        response.shutdown()
        return
    with contextlib.suppress(Exception):
        response.connection.sock.shutdown(socket.SHUT_RDWR)
