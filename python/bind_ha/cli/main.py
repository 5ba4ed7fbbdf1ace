"""`bind-ha` (also `kubectl bind-ha`): see and steer a bind-ha release.

Exit codes: 0 healthy / done; 1 unhealthy, refused, failed or not answered in time;
2 usage, connection or permission errors (the message says which).
"""

from __future__ import annotations

import argparse
import datetime
import os
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from bind_ha import requests
from bind_ha.cli import actions, clients, plan, release
from bind_ha.cli.actions import Lease, Refused
from bind_ha.cli.api import USAGE, Api, CommandError, Connection, connect
from bind_ha.cli.model import Assessment, ReleaseView, assess
from bind_ha.cli.release import Wiring
from bind_ha.cli.render import FORMATS, render
from bind_ha.clock import Clock, SystemClock
from bind_ha.requests import Answer, Failover, Pause, Reseed, Switchover

DEFAULT_WAIT = 60.0
CLEAR_SCREEN = "\x1b[H\x1b[2J"
INTERRUPTED = 130  # as a shell reports SIGINT
# A lagging secondary is looked at again for about two agent rounds (2 s each by default).
STEP_CONFIRM_SECONDS = 6.0
STEP_CONFIRM_POLL = 1.0


@dataclass
class Context:
    """Everything the command touches outside itself, so tests can give their own."""

    env: Mapping[str, str]
    out: TextIO
    err: TextIO
    clock: Clock
    sleep: Callable[[float], None]
    connect: Callable[..., Connection] = connect

    @classmethod
    def system(cls) -> Context:
        return cls(env=os.environ, out=sys.stdout, err=sys.stderr, clock=SystemClock(), sleep=time.sleep)

    def say(self, text: str) -> None:
        self.out.write(text if text.endswith("\n") else text + "\n")
        self.out.flush()


# ---- arguments ----------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """kubectl's connection flags, accepted before or after the command."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    parser.add_argument("--context", default=default, help="kubeconfig context (default: the current one)")
    parser.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's)")
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=argparse.SUPPRESS if suppress else 10.0,
        metavar="SECONDS",
        help="time limit of each API request (default 10)",
    )


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= requests.MAX_DEADLINE.total_seconds():
        raise argparse.ArgumentTypeError(f"must be between 0 and {requests.MAX_DEADLINE.total_seconds():g}")
    return value


def _interval(text: str) -> float:
    value = float(text)
    if not 0.1 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0.1 and 3600 seconds")
    return value


def _add(subparsers: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_text, description=help_text)
    _global_options(parser, suppress=True)
    return parser


def _release_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "release", nargs="?", metavar="RELEASE", help="the Helm release (default: the only one)"
    )


def _wait_argument(parser: argparse.ArgumentParser, default: float, what: str) -> None:
    parser.add_argument("--wait", type=_seconds, default=default, metavar="SECONDS", help=what)


def parser(prog: str) -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog=prog,
        description="See and steer a bind-ha release: roles, serials, the Lease, pauses and planned moves.",
        epilog="Exit codes: 0 healthy/done, 1 unhealthy/refused/unanswered, 2 usage or connection error.",
    )
    _global_options(top, suppress=False)
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    status = _add(commands, "status", "Show every pod's role, readiness, health and serials, and the Lease.")
    _release_argument(status)
    status.add_argument("-o", "--output", choices=FORMATS, default="table")
    status.add_argument("-w", "--watch", action="store_true", help="redraw until interrupted")
    status.add_argument("--interval", type=_interval, default=2.0, metavar="SECONDS", help="between redraws")
    status.add_argument(
        "--count", type=int, default=0, metavar="N", help="with --watch: stop after N (0: never)"
    )

    pause = _add(commands, "pause", "Pause automation: no pod takes the Lease or changes roles on its own.")
    _release_argument(pause)
    pause.add_argument("--reason", default="", help="why (shown by status and in the Event)")
    _wait_argument(pause, 0.0, "wait this long for the primary's acknowledgement (default: do not wait)")

    resume = _add(commands, "resume", "End a pause: automation takes over again.")
    _release_argument(resume)

    switchover = _add(commands, "switchover", "Move the primary on purpose to a healthy pod in step.")
    _release_argument(switchover)
    switchover.add_argument("--to", metavar="POD", help="the new primary (default: the most up-to-date pod)")
    _wait_argument(switchover, DEFAULT_WAIT, "the request's lifetime and how long to wait for the answer")

    failover = _add(commands, "failover", "Promote a pod when no healthy primary exists.")
    _release_argument(failover)
    failover.add_argument("--to", metavar="POD", required=True, help="the pod to promote")
    failover.add_argument(
        "--force", action="store_true", help="promote it even if it lacks data other pods have"
    )
    _wait_argument(failover, DEFAULT_WAIT, "the request's lifetime and how long to wait for the answer")

    reseed = _add(commands, "reseed", "Let dynamic zones be seeded again from their source.")
    reseed.add_argument("names", nargs="+", metavar="[RELEASE] ZONE[,ZONE...]", help="zones to reseed")
    _wait_argument(reseed, DEFAULT_WAIT, "how long to wait for the answer")

    config = _add(commands, "client-config", "Print an RFC 2136 client's settings for this release.")
    config.add_argument("client", choices=clients.CLIENTS)
    _release_argument(config)
    config.add_argument("--zone", help="the dynamic zone the client updates (default: a placeholder)")
    config.add_argument(
        "--key",
        metavar="NAME",
        help="the TSIG key to use: the update key or a tsig.clients name (default: the client's narrowed"
        " key when the release has exactly one of its preset, else the update key)",
    )
    config.add_argument(
        "--client-namespace", metavar="NAMESPACE", help="where the client runs (default: its usual one)"
    )
    return top


# ---- a session: one connection, one release --------------------------------------------


@dataclass
class Session:
    context: Context
    api: Api
    release: str
    asker: str | None = None  # who(), asked once

    def wall(self) -> datetime.datetime:
        return self.context.clock.wall()

    def read(self, earlier: ReleaseView | None = None) -> tuple[ReleaseView, Wiring, Assessment]:
        view, wired = release.read_release(self.api, self.release)
        return view, wired, assess(view, self.wall(), earlier)

    def settled(self) -> tuple[ReleaseView, Assessment]:
        """A view, and if secondaries lag in it, later views judged against it until they are in
        step or STEP_CONFIRM_SECONDS pass: pods publish their serials once a round, so under a
        stream of updates one view alone cannot tell a lagging secondary from a busy one."""
        first, _wired, assessment = self.read()
        view, deadline = first, self.context.clock.monotonic() + STEP_CONFIRM_SECONDS
        while assessment.lagging and self.context.clock.monotonic() < deadline:
            self.context.sleep(STEP_CONFIRM_POLL)
            view, _wired, assessment = self.read(earlier=first)
        return view, assessment

    def who(self) -> str:
        """Who asks: the user the API server authenticated, else the kubeconfig's user entry."""
        if self.asker is None:
            self.asker = (
                self.api.whoami() or self.api.connection.user or self.context.env.get("USER") or "unknown"
            )[: requests.MAX_BY]
        return self.asker

    def lease(self, wired: Wiring) -> Lease:
        return Lease(self.api, wired.lease_name, requests.Keys(wired.prefix))

    def record(self, lease: Any, reason: str, message: str, *, warning: bool = False) -> None:
        """Post the audit Event; failing to is worth a warning, not a failure."""
        when = self.wall().strftime("%Y-%m-%dT%H:%M:%SZ")
        body = actions.event(lease, reason=reason, message=message, warning=warning, when=when, by=self.who())
        try:
            self.api.create_event(body)
        except CommandError as error:
            self.context.err.write(f"warning: Event {reason} not posted: {error}\n")


def _new_id() -> str:
    return secrets.token_hex(8)


# ---- status ---------------------------------------------------------------------------------


def _frame(session: Session, output: str) -> tuple[str, int]:
    view, assessment = session.settled()
    return render(view, assessment, session.wall(), output), assessment.exit_code


def cmd_status(session: Session, args: argparse.Namespace) -> int:
    context = session.context
    if not args.watch:
        text, code = _frame(session, args.output)
        context.out.write(text)
        return code
    code, shown = 1, 0
    clear = args.output == "table" and context.out.isatty()
    separator = {"json": "", "yaml": "---\n", "table": "\n"}[args.output]
    try:
        while True:
            text, code = _frame(session, args.output)
            context.out.write((CLEAR_SCREEN if clear else (separator if shown else "")) + text)
            context.out.flush()
            shown += 1
            if args.count and shown >= args.count:
                return code
            context.sleep(args.interval)
    except KeyboardInterrupt:
        return code


# ---- requests -------------------------------------------------------------------------------


def _report_answer(context: Context, kind: str, answer: Answer | None, waited: float, wait: float) -> int:
    if answer is None:
        context.say(
            f"no answer within {wait:g}s: the {kind} request stays on the Lease until its deadline, and the "
            "agents may still act on it until then; `bind-ha status` shows it and any later answer"
        )
        return 1
    took = f" (the agent reports {answer.seconds:.2f}s)" if answer.seconds is not None else ""
    reason = f": {answer.reason}" if answer.reason else ""
    context.say(f"{kind} {answer.outcome} after {waited:.2f}s{took}, answered by {answer.by}{reason}")
    return 0 if answer.outcome == "done" else 1


# What to do once a request is answered `done`: (the answer, seconds since it was sent,
# seconds left of --wait) -> exit code.
Follow = Callable[[Answer, float, float], int]


def _send(
    session: Session,
    wired: Wiring,
    request: requests.Request,
    *,
    check: Callable[[requests.Requests], str | None],
    event: tuple[str, str, bool],
    wait: float,
    follow: Follow | None = None,
) -> int:
    """Write the request, record it, and wait for its answer when asked to."""
    kind = requests.kind_of(request)
    lease_api = session.lease(wired)
    clock = session.context.clock
    started = clock.monotonic()
    written = lease_api.write(kind, requests.format_request(request), check)
    reason, message, warning = event
    session.record(written, reason, message, warning=warning)
    session.context.say(f"{message}; id {request.id}, on Lease {wired.lease_name}")
    if wait <= 0:
        return 0
    session.context.say(f"waiting up to {wait:g}s for the agents' answer...")
    answer = lease_api.await_answer(kind, request.id, wait, clock, session.context.sleep)
    waited = clock.monotonic() - started
    code = _report_answer(session.context, kind, answer, waited, wait)
    if code != 0 or answer is None or follow is None:
        return code
    return follow(answer, waited, wait - waited)


def cmd_pause(session: Session, args: argparse.Namespace) -> int:
    view, wired, _assessment = session.read()
    found = view.lease.requests if view.lease else requests.Requests()
    if found.paused:
        session.context.say(f"{view.release} is already paused: {_pause_text(found.pause)}")
        return 0
    pause = Pause(id=_new_id(), by=session.who(), at=session.wall(), reason=args.reason)
    why = f" ({args.reason})" if args.reason else ""
    return _send(
        session,
        wired,
        pause,
        check=lambda _found: None,
        event=("PauseRequested", f"paused automation of release {view.release}{why}", False),
        wait=args.wait,
    )


def _pause_text(pause: Pause | None) -> str:
    if pause is None:
        return "by a malformed annotation"
    if pause.at is None:
        return "by hand"
    return f"by {pause.by} at {requests.timestamp(pause.at)}" + (f" ({pause.reason})" if pause.reason else "")


def cmd_resume(session: Session, args: argparse.Namespace) -> int:
    view, wired, _assessment = session.read()
    if view.lease is None or not view.lease.requests.paused:
        session.context.say(f"{view.release} is not paused")
        return 0
    lease_api = session.lease(wired)
    # The pause's answer stays: the agents see from it that automation was resumed (and clear it).
    written = lease_api.write(requests.PAUSE, None, lambda _found: None, clear_answer=False)
    session.record(written, "ResumeRequested", f"resumed automation of release {view.release}")
    was = _pause_text(view.lease.requests.pause)
    session.context.say(f"resumed automation of release {view.release} (the pause was {was})")
    return 0


def _deadline(session: Session, wait: float) -> tuple[datetime.datetime, datetime.datetime]:
    now = session.wall()
    return now, now + datetime.timedelta(seconds=max(wait, 1.0))


def cmd_switchover(session: Session, args: argparse.Namespace) -> int:
    _view, wired, assessment = session.read()
    refusal = plan.switchover_refusal(assessment, args.to)
    if refusal:
        raise Refused(refusal)
    at, deadline = _deadline(session, args.wait)
    request = Switchover(id=_new_id(), by=session.who(), at=at, deadline=deadline, to=args.to or "")
    assert assessment.primary is not None
    old = assessment.primary.name
    target = args.to or "the most up-to-date pod"

    def moved(_answer: Answer, waited: float, left: float) -> int:
        return _await_primary(session, old, args.to, waited, left)

    return _send(
        session,
        wired,
        request,
        check=lambda found: plan.pending(found, requests.SWITCHOVER, session.wall()),
        event=(
            "SwitchoverRequested",
            f"switchover from {old} to {target} requested",
            False,
        ),
        wait=args.wait,
        follow=moved,
    )


def _await_primary(session: Session, old: str, target: str | None, waited: float, left: float) -> int:
    """After the old primary handed the Lease over: wait until the new one is a healthy primary
    (it holds the Lease, is labelled primary, its agent healthy) and say how long the move took."""
    clock = session.context.clock
    started = clock.monotonic() - waited
    deadline = clock.monotonic() + max(left, 0.0)
    while True:
        _view, _wired, assessment = session.read()
        primary = assessment.primary
        if primary is not None and primary.name != old and (target is None or primary.name == target):
            took = clock.monotonic() - started
            session.context.say(f"{primary.name} is the primary: the switchover took {took:.2f}s")
            return 0
        if clock.monotonic() >= deadline:
            problems = "; ".join(assessment.problems) or "no healthy primary"
            session.context.say(f"handed over, but no new healthy primary within the wait: {problems}")
            return 1
        session.context.sleep(min(actions.POLL_SECONDS, max(deadline - clock.monotonic(), 0.01)))


def cmd_failover(session: Session, args: argparse.Namespace) -> int:
    view, wired, assessment = session.read()
    with_data = view.lease.with_data if view.lease else frozenset()
    refusal = plan.failover_refusal(assessment, args.to, force=args.force, with_data=with_data)
    if refusal:
        raise Refused(refusal)
    lost = plan.losses(assessment, args.to, with_data)
    for line in lost:
        session.context.say(f"--force: promoting {args.to} discards {line}")
    at, deadline = _deadline(session, args.wait)
    request = Failover(id=_new_id(), by=session.who(), at=at, deadline=deadline, to=args.to, force=args.force)
    forced = " (forced, discarding: " + "; ".join(lost) + ")" if lost else ""
    return _send(
        session,
        wired,
        request,
        check=lambda found: plan.pending(found, requests.FAILOVER, session.wall()),
        event=("FailoverRequested", f"failover to {args.to} requested{forced}", bool(lost)),
        wait=args.wait,
    )


def reseed_arguments(names: Sequence[str]) -> tuple[str | None, Reseed]:
    """`reseed [RELEASE] ZONE[,ZONE...]`: one argument is the zones, two are release and zones."""
    if len(names) > 2:
        raise CommandError("reseed takes [RELEASE] ZONE[,ZONE...]: separate several zones with commas")
    try:
        return (names[0] if len(names) == 2 else None), requests.parse_reseed(names[-1])
    except requests.RequestError as error:
        raise CommandError(f"reseed: {error}") from None


def cmd_reseed(session: Session, args: argparse.Namespace) -> int:
    _release, wanted = reseed_arguments(args.names)
    _view, wired, _assessment = session.read()
    lease_api = session.lease(wired)
    pending = lease_api.requests(lease_api.read()).reseed
    zones = tuple(dict.fromkeys((pending.zones if pending else ()) + wanted.zones))
    if len(zones) > requests.MAX_ZONES:
        raise Refused(f"more than {requests.MAX_ZONES} zones would be pending reseed")
    request = Reseed(zones=zones)
    return _send(
        session,
        wired,
        request,
        check=lambda found: None if found.reseed == pending else "another reseed request arrived; run again",
        event=("ReseedRequested", f"reseed of {', '.join(zones)} requested", True),
        wait=args.wait,
    )


# ---- client-config --------------------------------------------------------------------------


def cmd_client_config(session: Session, args: argparse.Namespace) -> int:
    _view, _wired, assessment = session.read()
    settings = release.client_settings(
        session.api, session.release, zones=assessment.zones, client=args.client, key=args.key
    )
    try:
        text = clients.recipe(args.client, settings, zone=args.zone, namespace=args.client_namespace)
    except clients.ClientConfigError as error:
        raise Refused(str(error)) from None
    session.context.out.write(text)
    return 0


COMMANDS: dict[str, Callable[[Session, argparse.Namespace], int]] = {
    "status": cmd_status,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "switchover": cmd_switchover,
    "failover": cmd_failover,
    "reseed": cmd_reseed,
    "client-config": cmd_client_config,
}


def _release_name(args: argparse.Namespace) -> str | None:
    if args.command == "reseed":
        return reseed_arguments(args.names)[0]
    return getattr(args, "release", None)


def run(argv: Sequence[str], context: Context, *, prog: str = "bind-ha") -> int:
    args = parser(prog).parse_args(list(argv))
    try:
        if args.request_timeout <= 0:
            raise CommandError("--request-timeout must be greater than 0")
        connection = context.connect(
            kubeconfig=args.kubeconfig, context=args.context, namespace=args.namespace, env=context.env
        )
        api = Api(connection, timeout=args.request_timeout)
        session = Session(context, api, release.find_release(api, _release_name(args)))
        return COMMANDS[args.command](session, args)
    except Refused as refusal:
        context.err.write(f"refused: {refusal}\n")
        return 1
    except CommandError as error:
        context.err.write(f"error: {error}\n")
        return USAGE
    except requests.RequestError as error:  # e.g. a --reason with control characters
        context.err.write(f"error: the request would be malformed: {error}\n")
        return USAGE
    except KeyboardInterrupt:
        context.err.write("interrupted\n")
        return INTERRUPTED


def main() -> int:
    invoked = os.path.basename(sys.argv[0])
    prog = "kubectl bind-ha" if invoked.startswith("kubectl-") else "bind-ha"
    return run(sys.argv[1:], Context.system(), prog=prog)
