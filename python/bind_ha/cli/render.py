"""`bind-ha status` output: a table for people, one document for json and yaml (pure)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from typing import Any

import yaml

from bind_ha import requests
from bind_ha.cli.model import Assessment, PodReport, ReleaseView, ZoneState, duration

FORMATS = ("table", "json", "yaml")


def _time(moment: datetime.datetime | None) -> str | None:
    return None if moment is None else requests.timestamp(moment)


def _agent(report: PodReport) -> str | None:
    status = report.pod.status
    return None if status is None else ("healthy" if status.healthy else "unhealthy")


def _request_document(found: requests.Requests) -> dict[str, Any]:
    pending: dict[str, Any] = {}
    for request in (found.switchover, found.failover):
        if request is not None:
            entry: dict[str, Any] = {
                "id": request.id,
                "by": request.by,
                "at": _time(request.at),
                "deadline": _time(request.deadline),
                "to": request.to,
            }
            if isinstance(request, requests.Failover):
                entry["force"] = request.force
            pending[requests.kind_of(request)] = entry
    if found.reseed is not None:
        pending["reseed"] = {"id": found.reseed.id, "zones": list(found.reseed.zones)}
    return pending


def _lease_document(view: ReleaseView, assessment: Assessment) -> dict[str, Any] | None:
    lease = view.lease
    if lease is None:
        return None
    found = lease.requests
    pause = found.pause
    holder = next((report.pod.name for report in assessment.pods if report.holder), None)
    return {
        "name": lease.name,
        "holder": lease.holder or None,
        "holderPod": holder,
        "acquireTime": _time(lease.acquire_time),
        "renewTime": _time(lease.renew_time),
        "renewAgeSeconds": None if assessment.renew_age is None else round(assessment.renew_age, 3),
        "leaseDurationSeconds": lease.duration,
        "transitions": lease.transitions,
        "paused": found.paused,
        "pause": None
        if pause is None
        else {"id": pause.id, "by": pause.by, "at": _time(pause.at), "reason": pause.reason},
        "requests": _request_document(found),
        "answers": {
            kind: {
                "id": answer.id,
                "outcome": answer.outcome,
                "reason": answer.reason,
                "by": answer.by,
                "at": _time(answer.at),
                "seconds": answer.seconds,
            }
            for kind, answer in sorted(found.answers.items())
        },
        "malformed": list(found.problems),
    }


def document(view: ReleaseView, assessment: Assessment) -> dict[str, Any]:
    """Everything status knows, as plain data (the json and yaml outputs)."""
    return {
        "release": view.release,
        "namespace": view.namespace,
        "healthy": assessment.healthy,
        "primary": assessment.primary.name if assessment.primary else None,
        "problems": list(assessment.problems),
        "notes": list(assessment.notes),
        "pods": [
            {
                "name": report.pod.name,
                "node": report.pod.node,
                "ip": report.pod.ip,
                "role": report.pod.role,
                "ready": report.pod.ready,
                "deleting": report.pod.deleting,
                "agent": _agent(report),
                "holdsLease": report.holder,
                "inStep": report.in_step,
                "zones": {state.zone: {"serial": state.serial, "lag": state.lag} for state in report.zones},
            }
            for report in assessment.pods
        ],
        "lease": _lease_document(view, assessment),
    }


def _zone_cell(state: ZoneState, reference: bool) -> str:
    if state.serial is None:
        return "-"
    if reference or state.lag in (0, None):
        return str(state.serial)
    assert state.lag is not None
    return f"{state.serial} ({state.lag} behind)" if state.lag > 0 else f"{state.serial} ({-state.lag} AHEAD)"


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def _pod_table(assessment: Assessment) -> list[str]:
    header = ["POD", "NODE", "IP", "ROLE", "LEASE", "READY", "AGENT", *assessment.zones]
    rows = [header]
    for report in assessment.pods:
        pod = report.pod
        reference = report.holder and pod.role == "primary"
        rows.append(
            [
                pod.name + (" (deleting)" if pod.deleting else ""),
                pod.node or "-",
                pod.ip or "-",
                pod.role or "-",
                "holder" if report.holder else "-",
                "yes" if pod.ready else "no",
                _agent(report) or "-",
                *(_zone_cell(state, reference) for state in report.zones),
            ]
        )
    return _columns(rows)


def _lease_lines(view: ReleaseView, assessment: Assessment, now: datetime.datetime) -> list[str]:
    lease = view.lease
    if lease is None:
        return [f"Lease {view.lease_name}: none yet"]
    holder = lease.holder.split("/", 1)[0] if lease.holder else "nobody"
    held = (
        f", held since {_time(lease.acquire_time)} ({duration((now - lease.acquire_time).total_seconds())})"
        if lease.acquire_time and lease.holder
        else ""
    )
    renewed = f", renewed {duration(assessment.renew_age)} ago" if assessment.renew_age is not None else ""
    automation = "PAUSED" if lease.requests.paused else "running"
    return [
        f"Lease {lease.name}: holder {holder}{held}{renewed} (lease duration {lease.duration}s), "
        f"transitions {lease.transitions}",
        f"Automation: {automation}",
    ]


def verdict(assessment: Assessment) -> str:
    if assessment.primary is None or not assessment.healthy:
        return f"UNHEALTHY ({len(assessment.problems)} problem{'s' if len(assessment.problems) != 1 else ''})"
    secondaries = [
        report for report in assessment.pods if report.pod is not assessment.primary and report.pod.ready
    ]
    return (
        f"HEALTHY: {assessment.primary.name} is the primary; "
        f"{len(secondaries)} ready secondar{'ies' if len(secondaries) != 1 else 'y'} in step"
    )


def printable(text: str) -> str:
    """Zone names and serials come from pods' annotations: no terminal escape reaches the screen."""
    return "".join(
        character if character.isprintable() or character == "\n" else "\ufffd" for character in text
    )


def table(view: ReleaseView, assessment: Assessment, now: datetime.datetime) -> str:
    return printable(_table(view, assessment, now))


def _table(view: ReleaseView, assessment: Assessment, now: datetime.datetime) -> str:
    lines = [f"Release {view.release} in namespace {view.namespace}: {verdict(assessment)}", ""]
    lines += _pod_table(assessment) if assessment.pods else ["(no pods)"]
    lines += ["", *_lease_lines(view, assessment, now)]
    if assessment.problems:
        lines += ["", "Problems:", *(f"  - {problem}" for problem in assessment.problems)]
    if assessment.notes:
        lines += ["", "Notes:", *(f"  - {note}" for note in assessment.notes)]
    return "\n".join(lines) + "\n"


def render(view: ReleaseView, assessment: Assessment, now: datetime.datetime, output: str) -> str:
    if output == "json":
        return json.dumps(document(view, assessment), indent=2) + "\n"
    if output == "yaml":
        return str(yaml.safe_dump(document(view, assessment), sort_keys=False))
    return table(view, assessment, now)
