"""Operator requests carried on the release's Lease, and the agents' answers (pure).

The `bind-ha` command asks the agents for something by writing an annotation on the
release's Lease, which every agent reads each round; the agents act on it in their
normal rounds, so a request is honoured even if the command dies right after sending
it. Every write carries the Lease's resourceVersion (a 409 means someone else wrote
first: re-read and retry), and every value is parsed here as hostile input: at most
MAX_VALUE_BYTES, strict formats, no unknown fields. Nothing else parses or formats
these annotations: the command and the agents both import this module.

Requests (PREFIX is BIND_HA_LABEL_PREFIX, `bind-ha.io` by default):

- `PREFIX/paused`: `{"id","by","at","reason"}`, or the literal `true` (set by hand).
  Automation is paused: no pod takes the Lease or changes roles on its own; the primary
  keeps renewing. Removing the annotation resumes. A present but malformed value also
  counts as paused (a typo must not resume automation in the middle of maintenance),
  and is reported.
- `PREFIX/switchover`: `{"id","by","at","deadline","to"}`. Move the primary to pod `to`,
  or to the most up-to-date healthy pod when `to` is "".
- `PREFIX/failover`: `{"id","by","at","deadline","to","force"}`. Promote pod `to` although
  no healthy primary exists (or automation is paused); `force` lets a pod that lacks
  data other pods had be promoted, discarding that data.
- `PREFIX/reseed`: comma-separated zone names. Allow these dynamic zones to be seeded
  again from their source (an election never reseeds a zone that has held data).

Answers: an agent that handles a request removes its annotation and, in the same Lease
write, sets `PREFIX/answer-KIND` (KIND: pause, switchover, failover, reseed) to
`{"id","kind","outcome","reason","by","at","seconds"}`; `outcome` is `done`, `refused`,
`failed` or `expired`, `by` the answering pod, `seconds` how long the action took (or
null). It also posts an Event on its pod (reason `event_reason(kind, outcome)`, e.g.
`SwitchoverRefused`). One answer slot per kind, so answers to different kinds never
overwrite each other. A reseed request has no id field (its value is only the zone
list): its id is derived from the zones (`Reseed.id`).

Times are RFC 3339 UTC with microseconds (`2026-01-02T03:04:05.000006Z`). A switchover
or failover is honoured only before its `deadline`, judged by the agent's wall clock
(clusters run NTP; a skew only makes a request expire that much earlier or later); an
agent answers `expired` to one it finds past its deadline.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PREFIX = "bind-ha.io"
PAUSE = "pause"
SWITCHOVER = "switchover"
FAILOVER = "failover"
RESEED = "reseed"
KINDS = (PAUSE, SWITCHOVER, FAILOVER, RESEED)
REQUEST_KEYS = {PAUSE: "paused", SWITCHOVER: SWITCHOVER, FAILOVER: FAILOVER, RESEED: RESEED}
OUTCOMES = ("done", "refused", "failed", "expired")

MAX_VALUE_BYTES = 2048
MAX_TEXT = 512  # reasons
MAX_BY = 256  # who asked, or which pod answered
MAX_ZONES = 64
MAX_DEADLINE = datetime.timedelta(hours=1)  # a request cannot outlive an hour
MAX_SECONDS = 86400.0

ID = re.compile(r"^[a-z0-9][a-z0-9-]{3,62}$")
POD_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,6})?Z$")
LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")


class RequestError(ValueError):
    """A request or answer annotation is malformed; the message says which part."""


# ---- the values ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pause:
    id: str
    by: str
    at: datetime.datetime | None  # None for a pause set by hand (`true`)
    reason: str


@dataclass(frozen=True)
class Switchover:
    id: str
    by: str
    at: datetime.datetime
    deadline: datetime.datetime
    to: str  # "" = the most up-to-date healthy pod


@dataclass(frozen=True)
class Failover:
    id: str
    by: str
    at: datetime.datetime
    deadline: datetime.datetime
    to: str
    force: bool


@dataclass(frozen=True)
class Reseed:
    zones: tuple[str, ...]

    @property
    def id(self) -> str:
        """Derived from the zones, in any order: the annotation holds nothing else, and the
        primary rewrites it sorted (leasenotes.py) when it renews."""
        return "reseed-" + hashlib.sha256(",".join(sorted(set(self.zones))).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Answer:
    id: str
    kind: str
    outcome: str
    reason: str
    by: str
    at: datetime.datetime
    seconds: float | None


Request = Pause | Switchover | Failover | Reseed


def kind_of(request: Request) -> str:
    if isinstance(request, Pause):
        return PAUSE
    if isinstance(request, Switchover):
        return SWITCHOVER
    if isinstance(request, Failover):
        return FAILOVER
    return RESEED


def expired(request: Switchover | Failover, wall_now: datetime.datetime) -> bool:
    return wall_now >= request.deadline


def event_reason(kind: str, outcome: str) -> str:
    """The reason of the Event an agent posts with its answer, e.g. SwitchoverRefused."""
    return kind.capitalize() + outcome.capitalize()


# ---- annotation keys -------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    prefix: str = DEFAULT_PREFIX

    def request(self, kind: str) -> str:
        return f"{self.prefix}/{REQUEST_KEYS[kind]}"

    def answer(self, kind: str) -> str:
        return f"{self.prefix}/answer-{kind}"


# ---- formatting --------------------------------------------------------------------------


def timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dump(document: Mapping[str, Any]) -> str:
    text = json.dumps(dict(sorted(document.items())), separators=(",", ":"), ensure_ascii=True)
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise RequestError(f"request is {len(text.encode())} bytes, more than {MAX_VALUE_BYTES}")
    return text


def format_request(request: Request) -> str:
    """The annotation value of a request; validated as parse_* would validate it."""
    if isinstance(request, Reseed):
        text = ",".join(request.zones)
        parse_reseed(text)
        return text
    document: dict[str, Any] = {"id": request.id, "by": request.by}
    if isinstance(request, Pause):
        document |= {"at": timestamp(request.at) if request.at else None, "reason": request.reason}
    else:
        document |= {"at": timestamp(request.at), "deadline": timestamp(request.deadline), "to": request.to}
        if isinstance(request, Failover):
            document["force"] = request.force
    text = _dump(document)
    PARSERS[kind_of(request)](text)  # what we write must be what every reader accepts
    return text


def format_answer(answer: Answer) -> str:
    text = _dump(
        {
            "id": answer.id,
            "kind": answer.kind,
            "outcome": answer.outcome,
            "reason": answer.reason,
            "by": answer.by,
            "at": timestamp(answer.at),
            "seconds": answer.seconds,
        }
    )
    parse_answer(text)
    return text


# ---- parsing -------------------------------------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise RequestError(f"field {key!r} appears twice")
        result[key] = value
    return result


def _object(text: str, fields: tuple[str, ...]) -> dict[str, Any]:
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise RequestError(f"value is longer than {MAX_VALUE_BYTES} bytes")
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise RequestError("value is nested too deeply") from None
    except ValueError as error:
        raise RequestError(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise RequestError("not a JSON object")
    unknown = sorted(set(document) - set(fields))
    missing = sorted(set(fields) - set(document))
    if unknown:
        raise RequestError(f"unknown field(s) {', '.join(map(repr, unknown))}")
    if missing:
        raise RequestError(f"missing field(s) {', '.join(map(repr, missing))}")
    return document


def _text(document: Mapping[str, Any], name: str, limit: int, *, empty: bool = True) -> str:
    value = document[name]
    if not isinstance(value, str):
        raise RequestError(f"{name} must be a string")
    if len(value) > limit:
        raise RequestError(f"{name} is longer than {limit} characters")
    if not empty and not value:
        raise RequestError(f"{name} must not be empty")
    if any(not character.isprintable() for character in value):
        raise RequestError(f"{name} contains control characters")
    return value


def _id(document: Mapping[str, Any]) -> str:
    value = document["id"]
    if not isinstance(value, str) or not ID.match(value):
        raise RequestError("id must be 4-63 characters of a-z, 0-9 and '-'")
    return value


def parse_time(value: object, name: str) -> datetime.datetime:
    match = TIMESTAMP.match(value) if isinstance(value, str) else None
    if match is None:
        raise RequestError(f"{name} must be an RFC 3339 UTC time like 2026-01-02T03:04:05.000000Z")
    fraction = (match.group(2) or ".0")[1:].ljust(6, "0")
    try:
        moment = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise RequestError(f"{name} is not a valid date and time") from None
    return moment.replace(microsecond=int(fraction), tzinfo=datetime.UTC)


def _pod(document: Mapping[str, Any], name: str, *, empty: bool) -> str:
    value = document[name]
    if not isinstance(value, str) or (value and not POD_NAME.match(value)) or (not value and not empty):
        raise RequestError(f"{name} must be {'empty or ' if empty else ''}a pod name")
    return value


def _window(document: Mapping[str, Any]) -> tuple[datetime.datetime, datetime.datetime]:
    at = parse_time(document["at"], "at")
    deadline = parse_time(document["deadline"], "deadline")
    if not at < deadline <= at + MAX_DEADLINE:
        raise RequestError(f"deadline must be after at, by at most {MAX_DEADLINE}")
    return at, deadline


def parse_pause(text: str) -> Pause:
    if text == "true":  # `kubectl annotate lease ... bind-ha.io/paused=true`
        return Pause(id="manual", by="", at=None, reason="")
    document = _object(text, ("id", "by", "at", "reason"))
    at = None if document["at"] is None else parse_time(document["at"], "at")
    return Pause(
        id=_id(document), by=_text(document, "by", MAX_BY), at=at, reason=_text(document, "reason", MAX_TEXT)
    )


def parse_switchover(text: str) -> Switchover:
    document = _object(text, ("id", "by", "at", "deadline", "to"))
    at, deadline = _window(document)
    return Switchover(
        id=_id(document),
        by=_text(document, "by", MAX_BY),
        at=at,
        deadline=deadline,
        to=_pod(document, "to", empty=True),
    )


def parse_failover(text: str) -> Failover:
    document = _object(text, ("id", "by", "at", "deadline", "to", "force"))
    at, deadline = _window(document)
    if not isinstance(document["force"], bool):
        raise RequestError("force must be true or false")
    return Failover(
        id=_id(document),
        by=_text(document, "by", MAX_BY),
        at=at,
        deadline=deadline,
        to=_pod(document, "to", empty=False),
        force=document["force"],
    )


def zone_name(text: str) -> str:
    """A zone name as the agents know it: lower case, no trailing dot."""
    name = text.strip().lower().removesuffix(".")
    if not name or len(name) > 253 or not all(LABEL.match(label) for label in name.split(".")):
        raise RequestError(f"{text.strip()[:80]!r} is not a zone name")
    return name


def parse_reseed(text: str) -> Reseed:
    if len(text.encode()) > MAX_VALUE_BYTES:
        raise RequestError(f"value is longer than {MAX_VALUE_BYTES} bytes")
    zones = tuple(dict.fromkeys(zone_name(part) for part in text.split(",")))
    if len(zones) > MAX_ZONES:
        raise RequestError(f"more than {MAX_ZONES} zones")
    return Reseed(zones=zones)


def parse_answer(text: str) -> Answer:
    document = _object(text, ("id", "kind", "outcome", "reason", "by", "at", "seconds"))
    kind, outcome, seconds = document["kind"], document["outcome"], document["seconds"]
    if kind not in KINDS:
        raise RequestError(f"kind must be one of {', '.join(KINDS)}")
    if outcome not in OUTCOMES:
        raise RequestError(f"outcome must be one of {', '.join(OUTCOMES)}")
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 <= seconds <= MAX_SECONDS
    ):
        raise RequestError(f"seconds must be null or a number from 0 to {MAX_SECONDS:g}")
    return Answer(
        id=_id(document),
        kind=kind,
        outcome=outcome,
        reason=_text(document, "reason", MAX_TEXT),
        by=_text(document, "by", MAX_BY),
        at=parse_time(document["at"], "at"),
        seconds=None if seconds is None else float(seconds),
    )


PARSERS: dict[str, Callable[[str], Request]] = {
    PAUSE: parse_pause,
    SWITCHOVER: parse_switchover,
    FAILOVER: parse_failover,
    RESEED: parse_reseed,
}


# ---- everything on one Lease ------------------------------------------------------------


@dataclass(frozen=True)
class Requests:
    """What the Lease's annotations ask for. Malformed ones are left out and listed in problems."""

    pause: Pause | None = None
    paused: bool = False  # also True for a malformed pause annotation (fail safe)
    switchover: Switchover | None = None
    failover: Failover | None = None
    reseed: Reseed | None = None
    answers: Mapping[str, Answer] = field(default_factory=dict)
    problems: tuple[str, ...] = ()


def read(annotations: Mapping[str, str] | None, keys: Keys | None = None) -> Requests:
    """Parse every request and answer on a Lease; never raises."""
    annotations = annotations or {}
    keys = keys or Keys()
    found: dict[str, Request] = {}
    answers: dict[str, Answer] = {}
    problems: list[str] = []
    for kind in KINDS:
        raw = annotations.get(keys.request(kind))
        if raw:
            try:
                found[kind] = PARSERS[kind](raw)
            except RequestError as error:
                problems.append(f"{keys.request(kind)}: {error}")
        raw_answer = annotations.get(keys.answer(kind))
        if raw_answer:
            try:
                answer = parse_answer(raw_answer)
            except RequestError as error:
                problems.append(f"{keys.answer(kind)}: {error}")
                continue
            if answer.kind != kind:
                problems.append(f"{keys.answer(kind)}: answers a {answer.kind} request")
                continue
            answers[kind] = answer
    pause = found.get(PAUSE)
    switchover = found.get(SWITCHOVER)
    failover = found.get(FAILOVER)
    reseed = found.get(RESEED)
    return Requests(
        pause=pause if isinstance(pause, Pause) else None,
        paused=bool(annotations.get(keys.request(PAUSE))),
        switchover=switchover if isinstance(switchover, Switchover) else None,
        failover=failover if isinstance(failover, Failover) else None,
        reseed=reseed if isinstance(reseed, Reseed) else None,
        answers=answers,
        problems=tuple(problems),
    )
