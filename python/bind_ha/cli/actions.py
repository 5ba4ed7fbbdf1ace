"""Writing a request onto the Lease and waiting for the agents' answer.

A write is a strategic-merge patch of the Lease's annotations that carries the
resourceVersion just read: if anyone wrote in between (an agent renewing, another
operator), the API server answers 409 and we read again, judge again and retry. A new
request of a kind clears that kind's previous answer in the same write, so the answer
slot always belongs to the latest request. The clock and sleep are injected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bind_ha import requests
from bind_ha.cli.api import Api, CommandError, Conflict
from bind_ha.clock import Clock
from bind_ha.requests import Answer, Keys, Requests

MAX_ATTEMPTS = 8
POLL_SECONDS = 0.5
COMPONENT = "bind-ha-cli"


class Refused(Exception):
    """The request may not be sent now; the message says why (exit code 1)."""


@dataclass
class Lease:
    """The one Lease a command writes to, through the API."""

    api: Api
    name: str
    keys: Keys

    def read(self) -> Any:
        lease = self.api.read_lease(self.name)
        if lease is None:
            raise Refused(f"the Lease {self.name} does not exist yet: no agent of this release has run")
        return lease

    def requests(self, lease: Any) -> Requests:
        return requests.read(lease.metadata.annotations, self.keys)

    def write(
        self,
        kind: str,
        value: str | None,
        check: Callable[[Requests], str | None],
        *,
        clear_answer: bool = True,
    ) -> Any:
        """Set (or with None remove) kind's request, clearing its old answer unless told not to;
        check may refuse."""
        for _attempt in range(MAX_ATTEMPTS):
            lease = self.read()
            refusal = check(self.requests(lease))
            if refusal is not None:
                raise Refused(refusal)
            annotations = {self.keys.request(kind): value}
            if clear_answer:
                annotations[self.keys.answer(kind)] = None
            body = {
                "metadata": {"resourceVersion": lease.metadata.resource_version, "annotations": annotations}
            }
            try:
                return self.api.patch_lease(self.name, body)
            except Conflict:
                continue  # someone wrote first: read again and judge again
        raise CommandError(f"the Lease {self.name} changed under each of {MAX_ATTEMPTS} attempts to write it")

    def await_answer(
        self, kind: str, request_id: str, seconds: float, clock: Clock, sleep: Callable[[float], None]
    ) -> Answer | None:
        """Poll until an answer to request_id appears, or seconds pass."""
        deadline = clock.monotonic() + seconds
        while True:
            lease = self.api.read_lease(self.name)
            if lease is not None:
                answer = self.requests(lease).answers.get(kind)
                if answer is not None and answer.id == request_id:
                    return answer
            left = deadline - clock.monotonic()
            if left <= 0:
                return None
            sleep(min(POLL_SECONDS, left))


def event(lease: Any, *, reason: str, message: str, warning: bool, when: str, by: str) -> dict[str, Any]:
    """An Event on the Lease recording an operator's request (the audit trail beside the answer)."""
    return {
        "metadata": {"generateName": f"{lease.metadata.name}.", "namespace": lease.metadata.namespace},
        "involvedObject": {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "name": lease.metadata.name,
            "namespace": lease.metadata.namespace,
            "uid": lease.metadata.uid,
        },
        "reason": reason,
        "message": f"{message} (by {by})"[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": by[:128] or COMPONENT,
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": 1,
    }
