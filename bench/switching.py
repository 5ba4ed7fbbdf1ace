"""`make bench` measures of role switches: query outage by zone size, fence latency, time to
ready under writes (issue 9). Called from bench/run.py, which owns the table."""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update

from tests.harness import dnsclient
from tests.harness.examples import EXAMPLE_ZONES, big_zone
from tests.harness.named import LoopbackAllocator, NamedInstance, NamedSet
from tests.harness.pods import DNS_PORT, LocalPod, LocalRelease
from tests.harness.proxy import FORWARD, HANG
from tests.harness.tools import tool
from tests.harness.traffic import QueryStream, Writer, querying

if TYPE_CHECKING:
    from bench.run import Results

QUERY_TIMEOUT = 1.0  # a question unanswered this long counts as failed (SERVFAIL etc. always do)


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout}s")
        time.sleep(0.05)


# ---- query outage while a pod changes role, with the real agents ----------------------------


def switch_outage(release: LocalRelease, runs: int) -> tuple[list[int], list[int], int]:
    """Crash the primary (a follower is promoted) and cut the new primary off the API until
    another takes over (it is demoted), `runs` times; count the questions the promoted and the
    demoted pod failed to answer. Returns (promoted failures, demoted failures, questions)."""
    names = ["h1.big.test", "h777.big.test", "www.example.test", "ns1.big.test"]
    promoted, demoted, asked = [], [], 0
    for _run in range(runs):
        old = release.wait_for_leader(timeout=60)
        release.wait_converged("big.test", timeout=300)
        others = [pod for pod in release if pod is not old]
        with querying([pod.address for pod in others], DNS_PORT, names, QUERY_TIMEOUT) as streams:
            old.crash()
            new = release.wait_for_leader(excluding=old, timeout=60)
            wait(lambda new=new: _accepts(release, new), 60, "the new primary accepting updates")
            time.sleep(1)
        promoted.append(len(streams[new.address].failures))
        asked += sum(s.answered + len(s.failures) for s in streams.values())
        old.start()
        release.wait_for_agents(timeout=120)
        release.wait_converged("big.test", timeout=300)
        assert new.proxy is not None
        with querying([new.address], DNS_PORT, names, QUERY_TIMEOUT) as streams:
            new.proxy.set_mode(HANG)
            release.wait_for_leader(excluding=new, timeout=60)
            new.proxy.set_mode(FORWARD)
            wait(lambda new=new: new.role_file() == "secondary", 120, "the demotion")
            release.wait_converged("big.test", timeout=300)
            time.sleep(1)
        demoted.append(len(streams[new.address].failures))
        asked += streams[new.address].answered + len(streams[new.address].failures)
    return promoted, demoted, asked


def _accepts(release: LocalRelease, pod: LocalPod) -> bool:
    return (
        dnsclient.update(
            pod.address,
            DNS_PORT,
            "dyn.test",
            add={"outage-probe": "192.0.2.9"},
            key=release.update_key(),
            timeout=1,
        )
        == "NOERROR"
    )


def outage_zones(records: int) -> list[dict[str, object]]:
    return [*EXAMPLE_ZONES, big_zone("big.test", records)]


def record_outage(
    results: Results, records: int, promoted: list[int], demoted: list[int], asked: int
) -> None:
    results.count(
        f"switch_failed_queries_{records}",
        f"failed queries at the pod switching role, {records:,}-record zone (promoted / demoted)",
        sum(promoted) + sum(demoted),
        f"{sum(promoted)} / {sum(demoted)} in {len(promoted)} promotions and demotions; "
        f"{asked:,} questions at {QUERY_TIMEOUT:g}s timeout, to the pods' named directly",
    )


# ---- the mechanism alone: a plain type-changing reconfig against the staged view flip --------


def reconfig_outage(
    root: Path, allocator: LoopbackAllocator, records: int, runs: int
) -> tuple[list[float], list[float]]:
    """Two plain named: a secondary of a `records`-record zone is made primary and back by
    (a) a reconfig that changes the zone's type in place and (b) loading it in a staging view
    and flipping views. Returns the seconds of failed questions per switch for (a) and (b)."""
    instances = NamedSet(root / f"reconfig-{records}", allocator)
    primary, secondary = instances.create(2)
    try:
        source = primary.workdir / "big.txt"
        lines = [f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(records)]
        source.write_text(
            "$ORIGIN big.test.\n$TTL 300\n@ IN SOA ns1 h 1 3600 600 1209600 300\n@ IN NS ns1\n"
            "ns1 IN A 192.0.2.1\n" + "\n".join(lines) + "\n"
        )
        subprocess.run(
            [
                tool("named-compilezone"),
                "-F",
                "raw",
                "-o",
                str(primary.workdir / "big.db"),
                "big.test",
                str(source),
            ],
            check=True,
            capture_output=True,
        )
        primary.start(_conf(primary, [("", "any", "primary", "big.db")]), threads=None)
        secondary.start(_conf(secondary, [("", "any", "secondary", "a.db")], primary.address), threads=None)
        secondary.wait_for_serial("big.test", 1, timeout=120)
        plain, staged = [], []
        for _run in range(runs):
            plain.append(_measure(secondary, [_conf(secondary, [("", "any", "primary", "a.db")])]))
            plain.append(
                _measure(secondary, [_conf(secondary, [("", "any", "secondary", "a.db")], primary.address)])
            )
        secondary.stop()
        shutil.copyfile(secondary.workdir / "a.db", secondary.workdir / "v-a.db")
        secondary.start(
            _conf(secondary, [("a", "any", "secondary", "v-a.db")], primary.address), threads=None
        )
        serving = "a"
        for _run in range(2 * runs):
            nxt = "b" if serving == "a" else "a"
            role = "primary" if nxt == "b" else "secondary"
            old_role = "secondary" if role == "primary" else "primary"
            secondary.rndc("sync", "-clean")
            shutil.copyfile(secondary.workdir / f"v-{serving}.db", secondary.workdir / f"v-{nxt}.db")
            stage = _conf(
                secondary,
                [(nxt, "key stage", role, f"v-{nxt}.db"), (serving, "any", old_role, f"v-{serving}.db")],
                primary.address,
            )
            final = _conf(secondary, [(nxt, "any", role, f"v-{nxt}.db")], primary.address)
            staged.append(_measure(secondary, [stage, final], view=nxt))
            serving = nxt
        return plain, staged
    finally:
        instances.stop_all()


def _conf(named: NamedInstance, views: list[tuple[str, str, str, str]], primary: str | None = None) -> str:
    """named.conf with the zone in each (view, match-clients, role, file); view "" means none."""
    text = named.base_options().replace("recursion no;", "recursion no; masterfile-format raw;")
    keys = (
        named.keys.xfr.clause() + 'key "stage" { algorithm hmac-sha256; secret "c3RhZ2VzdGFnZXN0YWdl"; };\n'
    )
    body = ""
    for view, match, role, file_name in views:
        if role == "primary":
            zone = f'zone "big.test" {{ type primary; file "{file_name}"; allow-transfer {{ any; }}; }};'
        else:
            zone = (
                f'zone "big.test" {{ type secondary; file "{file_name}"; '
                f'primaries {{ {primary} port {DNS_PORT} key "{named.keys.xfr.name}"; }}; }};'
            )
        body += zone + "\n" if not view else f'view "{view}" {{ match-clients {{ {match}; }}; {zone} }};\n'
    return f"options {{ {text} }};\n" + named.controls() + keys + body


def _measure(named: NamedInstance, configs: list[str], view: str | None = None) -> float:
    """Apply configs in turn (waiting for the zone to load in `view` between them, as the agent
    does) while a stream of questions runs; the seconds from its first failure to the answer
    after its last (0 without failures)."""
    stream = QueryStream(named.address, DNS_PORT, ["h1.big.test", "ns1.big.test"], timeout=QUERY_TIMEOUT)
    stream.start()
    time.sleep(0.3)
    for index, config in enumerate(configs):
        named.conf_path.write_text(config)
        named.rndc("reconfig")
        if index + 1 < len(configs) and view is not None:
            keyring = dns.tsigkeyring.from_text({"stage": ("hmac-sha256", "c3RhZ2VzdGFnZXN0YWdl")})
            wait(lambda keyring=keyring: _staged_answers(named, keyring), 60, "the staged zone")
    time.sleep(1.0)
    stream.stop()
    return stream.outage() + stream.pause if stream.failures else 0.0


def _staged_answers(named: NamedInstance, keyring: dict[dns.name.Name, dns.tsig.Key]) -> bool:
    question = dns.message.make_query("big.test", "SOA")
    question.use_tsig(keyring, keyname=dns.name.from_text("stage"))
    try:
        reply = dns.query.udp(question, named.address, port=DNS_PORT, timeout=1)
    except Exception:
        return False
    return reply.rcode() == dns.rcode.NOERROR and bool(reply.answer)


# ---- fence latency with many dynamic zones ----------------------------------------------------------


def many_zones(count: int) -> list[dict[str, object]]:
    return [
        *EXAMPLE_ZONES,
        *(
            {"name": f"z{index}.test", "type": "dynamic", "nameservers": ["ns1.example.test."]}
            for index in range(count)
        ),
    ]


def fence_latency(release: LocalRelease, zones: int, runs: int) -> list[float]:
    """SIGSTOP the primary's agent; seconds from its renew deadline (its valid-until mark, on the
    CLOCK_MONOTONIC every process here shares) until every one of `zones` dynamic zones refuses
    updates (the named supervisor's fence), then SIGCONT before anyone may take over."""
    names = [f"z{index}.test" for index in range(zones)]
    keyring = dns.tsigkeyring.from_text({release.update_key()[0]: ("hmac-sha256", release.update_key()[1])})
    samples = []
    for _run in range(runs):
        leader = release.wait_for_leader(timeout=60)
        wait(
            lambda leader=leader: _refused(leader, names[:1], keyring) == [], 30, "the primary taking updates"
        )
        assert leader.agent is not None
        os.kill(leader.agent.pid, signal.SIGSTOP)
        try:
            valid_until = float((leader.run_dir / "primary-valid-until").read_text())
            first_refused: dict[str, float] = {}
            while len(first_refused) < zones:
                now = time.monotonic()
                for zone in _refused(leader, [z for z in names if z not in first_refused], keyring):
                    first_refused[zone] = now
                if now > valid_until + 10:
                    raise RuntimeError(
                        f"{zones - len(first_refused)} zones still writable 10s after the deadline"
                    )
            samples.append(max(first_refused.values()) - valid_until)
        finally:
            os.kill(leader.agent.pid, signal.SIGCONT)
        time.sleep(release.timing.retry_period * 2)
    return samples


def _refused(pod: LocalPod, zones: list[str], keyring: dict[dns.name.Name, dns.tsig.Key]) -> list[str]:
    """The zones (of those given) whose signed update over UDP the pod REFUSES right now."""
    refused = []
    keyname = next(iter(keyring))
    for zone in zones:
        update = dns.update.UpdateMessage(zone, keyring=keyring, keyname=keyname)
        update.add("fence-probe", 300, "A", "192.0.2.7")
        try:
            reply = dns.query.udp(update, pod.address, port=DNS_PORT, timeout=1)
        except Exception:
            continue
        if reply.rcode() == dns.rcode.REFUSED:
            refused.append(zone)
    return refused


def per_zone_freeze_seconds(pod: LocalPod, zones: int) -> float:
    """What fencing took before: one `rndc freeze ZONE` per zone (thawed again afterwards)."""
    rndc = [tool("rndc"), "-c", str(pod.run_dir / "rndc.conf")]
    view = pod.serving_view()
    started = time.monotonic()
    for index in range(zones):
        subprocess.run([*rndc, "freeze", f"z{index}.test", "IN", view], capture_output=True, check=False)
    took = time.monotonic() - started
    subprocess.run([*rndc, "thaw"], capture_output=True, check=False)
    return took


# ---- a restarted pod under a steady stream of updates ---------------------------------------------


def ready_under_writes(release: LocalRelease, runs: int) -> tuple[list[float], float]:
    """Restart a follower while four writers stream updates to the primary; seconds until its
    readiness probe passes. Returns the samples and the update rate."""
    samples, rates = [], []
    for run in range(runs):
        leader = release.wait_for_leader(timeout=60)
        follower = next(pod for pod in release if pod is not leader)
        key = release.update_key()
        writers = [
            Writer(lambda leader=leader: [leader.address], DNS_PORT, "dyn.test", key, f"ready{run}-{n}-", 0)
            for n in range(4)
        ]
        for writer in writers:
            writer.start()
        try:
            time.sleep(1)
            follower.stop()
            follower.start()
            restarted = time.monotonic()
            sent_before = sum(writer.sent for writer in writers)
            wait(lambda follower=follower: follower.probe().ready, 120, "readiness")
            samples.append(time.monotonic() - restarted)
            rates.append((sum(writer.sent for writer in writers) - sent_before) / samples[-1])
        finally:
            for writer in writers:
                writer.stop()
    return samples, statistics.median(rates)
