"""Whether a request may be sent, judged from what status sees (pure).

The command refuses, with the reason, what the agents would refuse anyway, before
writing anything: a switchover needs a healthy primary and a healthy target in step;
a failover is for when no healthy primary exists (or automation is paused), and a
target that lacks data other pods have needs --force, which says what it discards.
The agents judge again when they act: the cluster may have changed in between.
"""

from __future__ import annotations

import datetime

from bind_ha import requests
from bind_ha.cli.model import Assessment, PodReport, duration
from bind_ha.peers import behind_others
from bind_ha.requests import Failover, Requests, Switchover


def pending(found: Requests, kind: str, now: datetime.datetime) -> str | None:
    """Why a new request of this kind must wait: one is pending and not past its deadline."""
    request: Switchover | Failover | None = (
        found.switchover if kind == requests.SWITCHOVER else found.failover
    )
    if request is None or requests.expired(request, now):
        return None
    left = duration((request.deadline - now).total_seconds())
    return (
        f"a {kind} to {request.to or 'the most up-to-date pod'} requested by {request.by} "
        f"(id {request.id}) is pending for {left} more; wait for its answer or its deadline"
    )


def _report(assessment: Assessment, name: str) -> PodReport | None:
    return next((report for report in assessment.pods if report.pod.name == name), None)


def _unfit(report: PodReport | None, name: str, *, ready: bool = True) -> str | None:
    """Why a pod cannot become primary at all (absent, leaving, unready, unhealthy agent)."""
    if report is None:
        return f"there is no pod {name} in this release"
    pod = report.pod
    if pod.deleting:
        return f"{name} is being deleted"
    if ready and not pod.ready:
        return f"{name} is not ready"
    if pod.status is None:
        return f"{name}'s agent publishes no status"
    if not pod.status.healthy:
        return f"{name}'s agent reports itself unhealthy"
    return None


def _apart(report: PodReport) -> list[str]:
    """Zones a pod has no copy of. Differing serials are no reason: under a stream of updates
    the serials each pod published a round ago always differ a little, either way. Whether
    the target is in step is judged by the primary itself, live, before it freezes writes
    (steering.py), and it answers with the reason when it is not."""
    return [f"{state.zone} missing" for state in report.zones if state.serial is None]


def candidates(assessment: Assessment) -> list[PodReport]:
    """Secondaries that could take over now: ready, healthy, with every zone of the primary."""
    return [
        report
        for report in assessment.pods
        if report.pod is not assessment.primary
        and _unfit(report, report.pod.name) is None
        and not _apart(report)
    ]


def switchover_refusal(assessment: Assessment, target: str | None) -> str | None:
    if assessment.primary is None:
        return (
            "there is no healthy primary to hand over from "
            f"({'; '.join(assessment.problems)}); use `bind-ha failover --to POD`"
        )
    if target is None:
        if not candidates(assessment):
            return "no secondary is ready, healthy and has every zone of the primary"
        return None
    if target == assessment.primary.name:
        return f"{target} is already the primary"
    return _target_refusal(assessment, target)


def _target_refusal(assessment: Assessment, target: str) -> str | None:
    report = _report(assessment, target)
    unfit = _unfit(report, target)
    if unfit:
        return unfit
    assert report is not None
    apart = _apart(report)
    if apart:
        return f"{target} is not in step with the primary: {', '.join(apart)}"
    return None


def losses(assessment: Assessment, target: str, with_data: frozenset[str] = frozenset()) -> list[str]:
    """What promoting target would discard: dynamic zones where another pod published newer
    data. with_data: the zones the Lease lists as having held clients' data (leasenotes.py);
    only they can lose anything (a static zone is written afresh from its source on
    promotion). Empty (an older release): every zone counts."""
    report = _report(assessment, target)
    if report is None:
        return []
    mine = report.pod.status.serials if report.pod.status else {}
    zones = sorted(
        zone
        for zone in {
            zone for other in assessment.pods if other.pod.status for zone in other.pod.status.serials
        }
        if not with_data or zone in with_data
    )
    published = {other.pod.name: other.pod.status.serials for other in assessment.pods if other.pod.status}
    return behind_others(target, mine, published, zones)


def failover_refusal(
    assessment: Assessment, target: str, *, force: bool, with_data: frozenset[str] = frozenset()
) -> str | None:
    """A failover is for when no healthy primary exists (the agents refuse it otherwise: a
    switchover moves a healthy primary, paused or not). With --force, a target that is not
    ready may be promoted: a pod without a zone's data does not answer it, so it is not ready."""
    primary = assessment.primary
    if primary is not None:
        if primary.name == target:
            return f"{target} is already the primary"
        return (
            f"{primary.name} is a healthy primary: use `bind-ha switchover --to {target}` "
            "(it works while automation is paused too)"
        )
    report = _report(assessment, target)
    if report is not None and not report.pod.ready and not force:
        return f"{target} is not ready (a pod without a zone's data is not): --force promotes it anyway"
    unfit = _unfit(report, target, ready=False)
    if unfit:
        return unfit
    lost = losses(assessment, target, with_data)
    if lost and not force:
        return (
            f"{target} lacks data other pods have ({'; '.join(lost)}); "
            "promote a pod that has it, or pass --force to discard it"
        )
    return None
