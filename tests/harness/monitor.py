"""Watches role labels for a whole test and remembers the worst moment."""

from __future__ import annotations

import threading

import kubernetes

from tests.harness.pods import ROLE_LABEL, SELECTOR_LABELS


class PrimaryLabelMonitor(threading.Thread):
    """Records, from a pod watch, the most pods ever labelled primary at once."""

    def __init__(self, api_client: kubernetes.client.ApiClient, namespace: str) -> None:
        super().__init__(daemon=True, name="label-monitor")
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.namespace = namespace
        self.primaries: dict[str, bool] = {}
        self.most_at_once = 0
        self.history: list[tuple[str, ...]] = []
        self._stop = threading.Event()
        self._watch = kubernetes.watch.Watch()

    def run(self) -> None:
        selector = ",".join(f"{k}={v}" for k, v in SELECTOR_LABELS.items())
        while not self._stop.is_set():
            try:
                for event in self._watch.stream(
                    self.core.list_namespaced_pod, self.namespace, label_selector=selector, timeout_seconds=30
                ):
                    pod = event["object"]
                    labelled = (pod.metadata.labels or {}).get(ROLE_LABEL) == "primary"
                    self.primaries[pod.metadata.name] = labelled and event["type"] != "DELETED"
                    now = tuple(sorted(name for name, primary in self.primaries.items() if primary))
                    if not self.history or self.history[-1] != now:
                        self.history.append(now)
                    self.most_at_once = max(self.most_at_once, len(now))
                    if self._stop.is_set():
                        return
            except Exception:
                self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()
