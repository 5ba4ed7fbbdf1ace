"""Attacks on the zone compiler with real named-compilezone (issue 10, findings 1 and 5).

Zone text is hostile input: it must not make the compiler read another file (a TSIG key,
the rndc key, the API token), echo anything but the zone's own text, or take minutes,
gigabytes or the election thread.
"""

from __future__ import annotations

import base64
import logging
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import threading
import time

import pytest

from bind_ha import sandbox, zonefiles
from bind_ha.catalog import Catalog
from bind_ha.zonemodel import ZoneError, ZoneLimits, ZoneSpec, parse_zones, zone_from_file

HEADER = "$TTL 60\n@ IN SOA ns1 host 1 60 60 60 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"


@pytest.fixture
def secret_file(tmp_path: pathlib.Path) -> tuple[pathlib.Path, str]:
    """A stand-in for /etc/bind-ha/tsig/update-secret: one base64 token, outside the scratch dir."""
    token = base64.b64encode(secrets.token_bytes(32)).decode()
    path = tmp_path / "tsig" / "update-secret"
    path.parent.mkdir()
    path.write_text(token + "\n")
    return path, token


def big_records(count: int) -> str:
    return "".join(f"h{i} IN A 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}\n" for i in range(count))


def test_an_include_of_a_secret_never_reaches_the_error_message(
    tmp_path: pathlib.Path, secret_file: tuple[pathlib.Path, str]
) -> None:
    """Before: BIND read the key file and echoed its token in the ZoneRejected message."""
    path, token = secret_file
    zone = {
        "name": "example.test",
        "nameservers": ["ns1.example.test."],
        "records": f"ns1 IN A 192.0.2.1\n$INCLUDE {path} evil.example.org.\n",
    }
    with pytest.raises(ZoneError) as rejected:
        (spec,) = parse_zones([zone], "zones.yaml")
        zonefiles.canonicalize(spec, workdir=tmp_path / "scratch")
    assert token not in str(rejected.value) and token[:8] not in str(rejected.value)
    assert "$INCLUDE is not allowed" in str(rejected.value)


def test_the_compiler_itself_cannot_read_a_file_outside_its_scratch_directory(
    tmp_path: pathlib.Path, secret_file: tuple[pathlib.Path, str]
) -> None:
    """Defence in depth: even text that bypasses the $INCLUDE check (here handed to the compiler
    directly) cannot read the key: Landlock refuses the open, and nothing of it is echoed."""
    assert zonefiles.kernel_sandbox(), "Landlock must confine the compiler on this kernel"
    path, token = secret_file
    spec = ZoneSpec(name="example.test", type="static", text="", origin="zones.d/example.test.zone")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for include in (f"$INCLUDE {path} evil.example.org.\n", f"$INCLUDE ../tsig/{path.name}\n"):
        with pytest.raises(ZoneError) as rejected:
            zonefiles._compilezone(
                spec,
                HEADER + include,
                scratch,
                ZoneLimits(),
                "-k",
                "fail",
                "-F",
                "text",
                "-o",
                str(scratch / "o"),
            )
        assert token[:8] not in str(rejected.value), rejected.value


def test_the_sandbox_refuses_keys_token_network_and_signals(
    tmp_path: pathlib.Path, secret_file: tuple[pathlib.Path, str]
) -> None:
    """What the compiler's process may do, tried with a shell in its place."""
    path, _token = secret_file
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        script = f"""
            cat {path} >/dev/null 2>&1 && echo read-key
            echo x > {tmp_path}/outside 2>/dev/null && echo wrote-outside
            echo x > {scratch}/inside && echo wrote-inside
            kill -0 {os.getpid()} 2>/dev/null && echo signalled-agent
            /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', {port}), 2)" \
                2>/dev/null && echo connected
            /usr/bin/env
        """
        command = [
            sys.executable, "-I", str(zonefiles.SANDBOX), "--workdir", str(scratch),
            "--memory", str(256 * 2**20), "--seconds", "10", "--", "/bin/sh", "-c", script,
        ]  # fmt: skip
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=False, env={"SECRET": "x"}
        )
    lines = result.stdout.split()
    assert "wrote-inside" in lines, result
    assert not {"read-key", "wrote-outside", "signalled-agent", "connected"} & set(lines), result.stdout
    environment = sorted(
        line for line in lines if "=" in line and not line.startswith(("PWD=", "SHLVL=", "_="))
    )
    assert environment == sorted(f"{k}={v}" for k, v in sandbox.CLEAN_ENV.items())


@pytest.mark.parametrize(
    "output",
    [
        "/etc/bind-ha/tsig/update-secret:1: ignoring out-of-zone data (c2VjcmV0.evil.example.org)",
        "dns_master_load: /etc/bind-ha/tsig/update-secret:1: unknown RR type 'c2VjcmV0'",
        "mem.c:353: INSIST(ret != ((void *)0)) failed, back trace\n/lib/libisc.so(+0x3ae80)[0x7f7b]",
        "zone evil.example.org/IN: loaded serial 1",
    ],
)
def test_compiler_output_not_about_the_zones_own_text_is_never_echoed(output: str) -> None:
    spec = ZoneSpec(name="example.test", type="static", text="", origin="zones.d/example.test.zone")
    explained = zonefiles._explain(spec, output)
    assert explained == "zones.d/example.test.zone: rejected by named-compilezone"


def test_compiler_output_about_the_zone_keeps_its_line_and_reason() -> None:
    spec = ZoneSpec(name="example.test", type="static", text="", origin="o", body_offset=4)
    output = (
        "dns_rdata_fromtext: /dev/stdin:6: near 'x': bad dotted quad\n"
        "zone example.test/IN: NS 'ns1.example.test' has no address records (A or AAAA)\n"
        "zone example.test/IN: not loaded due to errors.\n"
    )
    assert zonefiles._explain(spec, output) == (
        "o: records line 2: near 'x': bad dotted quad; "
        "NS 'ns1.example.test' has no address records (A or AAAA)"
    )


def test_a_huge_generate_is_refused_before_compiling(tmp_path: pathlib.Path) -> None:
    """Before: two $GENERATE lines became 4 million records, 4 minutes and 1.4 GB."""
    records = "$GENERATE 1-2000000 a$ A 10.0.0.1\n$GENERATE 1-2000000 b$ A 10.0.0.1\n"
    started = time.monotonic()
    with pytest.raises(ZoneError, match=r"\$GENERATE lines make over 65536 names"):
        (spec,) = parse_zones([{"name": "example.test", "nameservers": ["ns1"], "records": records}], "z")
        zonefiles.canonicalize(spec, workdir=tmp_path)
    assert time.monotonic() - started < 5, "refused before any compiling"


def test_the_compile_memory_limit_stops_a_big_zone_cleanly(tmp_path: pathlib.Path) -> None:
    spec = zone_from_file("big.test.zone", HEADER + big_records(100_000), "static", "d")
    with pytest.raises(
        ZoneError, match=r"d/big\.test\.zone: compiling needed more than 32 MiB \(the limit\)"
    ):
        zonefiles.canonicalize(spec, workdir=tmp_path, limits=ZoneLimits(compile_memory=32 * 2**20))
    assert zonefiles.canonicalize(spec, workdir=tmp_path).source_serial == 1, "fits the default limit"


def test_the_compile_time_limit_stops_a_slow_compile(tmp_path: pathlib.Path) -> None:
    spec = zone_from_file("big.test.zone", HEADER + big_records(200_000), "static", "d")
    with pytest.raises(ZoneError, match=r"compiling took over 0\.2s \(the limit\)"):
        zonefiles.canonicalize(spec, workdir=tmp_path, limits=ZoneLimits(compile_seconds=0.2))


def test_a_source_file_larger_than_the_cap_is_not_even_read_whole(tmp_path: pathlib.Path) -> None:
    directory = tmp_path / "zones.d"
    directory.mkdir()
    (directory / "big.test.zone").write_text(HEADER + "x IN TXT " + "a" * 5000 + "\n")
    zones_file = tmp_path / "zones.yaml"
    zones_file.write_text("[]\n")
    with pytest.raises(ZoneError, match=r"big\.test\.zone: over the 4096-byte limit"):
        zonefiles.load_sources(zones_file, directory, "static", ZoneLimits(max_bytes=4096))


def test_zones_compile_off_the_callers_thread(tmp_path: pathlib.Path) -> None:
    """The election round calls refresh(): it must return while a slow compile runs."""
    zones_file = tmp_path / "zones.yaml"
    zones_file.write_text("[]\n")
    directory = tmp_path / "zones.d"
    directory.mkdir()
    ready = threading.Event()
    catalog = Catalog(zones_file, directory, "static", tmp_path / "scratch", on_ready=ready.set)
    assert catalog.refresh().changed == ()  # the first look is waited for
    ready.clear()
    (directory / "big.test.zone").write_text(HEADER + big_records(200_000))
    assert catalog.refresh().changed == (), "nothing yet: the compile runs on the worker"
    assert catalog._pending is not None and not catalog._pending.done()
    assert ready.wait(120), "the worker said when it was done"
    assert catalog.refresh().changed == ("big.test",)
    assert catalog.zones["big.test"].text.count("\n") > 200_000


def test_a_compiler_needing_more_than_the_sandbox_allows_runs_without_landlock_and_says_so(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """On a system whose BIND needs a file Landlock does not allow, zones must still compile
    (with $INCLUDE refused, rlimits and a clean environment), and the log must say so."""
    needed = tmp_path / "elsewhere" / "needed.conf"
    needed.parent.mkdir()
    needed.write_text("x\n")
    compiler = tmp_path / "bin" / "named-compilezone"
    compiler.parent.mkdir()
    compiler.write_text(f"#!/bin/sh\ncat {needed} >/dev/null || exit 1\ncat >/dev/null\n")
    compiler.chmod(0o755)
    monkeypatch.setattr(zonefiles, "_compiler", lambda: str(compiler))
    zonefiles.kernel_sandbox.cache_clear()
    try:
        with caplog.at_level(logging.ERROR, logger="bind_ha.zonefiles"):
            assert zonefiles.kernel_sandbox() is False
        assert "the zone compiler fails under Landlock" in caplog.text
    finally:
        monkeypatch.undo()
        zonefiles.kernel_sandbox.cache_clear()
    assert zonefiles.kernel_sandbox() is True, "the real compiler works under Landlock here"
