"""Attacks through the agent's inputs (issue 10): zone text, peers' annotations, settings, keys.

Each test is an attack that succeeded before the fix: it must be refused, or be harmless.
Pure logic only; tests/bind/test_zone_sandbox.py attacks the real compiler.
"""

from __future__ import annotations

import json
import math

import pytest

from bind_ha import peers, settings, zonemodel
from bind_ha.keys import SecretError, check_secret
from bind_ha.peers import Status
from bind_ha.settings import SettingsError
from bind_ha.zonemodel import ZoneError, ZoneLimits, parse_zones, zone_from_file
from tests.unit.test_settings import REQUIRED

BASE = {"name": "example.test", "nameservers": ["ns1.example.test."], "records": "ns1 IN A 192.0.2.1\n"}
HEADER = "$TTL 60\n@ IN SOA ns1 host 1 60 60 60 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n"
INCLUDES = [
    "$INCLUDE /etc/bind-ha/tsig/update-secret evil.org.\n",
    "$include /var/run/secrets/kubernetes.io/serviceaccount/token\n",
    '"$INCLUDE" /var/run/bind-ha/rndc.secret\n',
    "($INCLUDE /etc/bind-ha/tsig/transfer-secret)\n",
    "\t$INCLUDE /etc/passwd\n",
    'txt IN TXT ( "a"\n$Include /etc/passwd )\n',
]


# ---- finding 1: zone text cannot name another file -------------------------------------------


@pytest.mark.parametrize("include", INCLUDES)
def test_include_is_refused_in_records(include: str) -> None:
    with pytest.raises(
        ZoneError, match=r"zones\.yaml: zone example\.test\.records: \$INCLUDE is not allowed"
    ):
        parse_zones([{**BASE, "records": "www IN A 192.0.2.80\n" + include}], "zones.yaml")


@pytest.mark.parametrize("include", INCLUDES)
def test_include_is_refused_in_a_whole_zone_file_value(include: str) -> None:
    zone = {"name": "example.test", "file": HEADER + include}
    with pytest.raises(ZoneError, match=r"zone example\.test\.file: \$INCLUDE is not allowed"):
        parse_zones([zone], "zones.yaml")


@pytest.mark.parametrize("include", INCLUDES)
def test_include_is_refused_in_a_zone_directory_file(include: str) -> None:
    with pytest.raises(ZoneError, match=r"zones\.d/example\.test\.zone: \$INCLUDE is not allowed"):
        zone_from_file("example.test.zone", HEADER + include, "static", "zones.d")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("nameservers", ["ns1.example.test.\n$INCLUDE /etc/bind-ha/tsig/update-secret"]),
        ("nameservers", ["ns1.example.test. ; comment"]),
        ("nameservers", ['"ns1"']),
        ("soa", {"mname": "ns1.example.test. hostmaster.example.test. 1 1 1 1 1\n$INCLUDE /x"}),
        ("soa", {"rname": "host\n$INCLUDE /var/run/bind-ha/rndc.secret"}),
        ("soa", {"rname": "a..b"}),
        ("soa", {"mname": "ns1.exämple.test."}),
    ],
)
def test_header_fields_must_be_domain_names(field: str, value: object) -> None:
    with pytest.raises(ZoneError, match=rf"zone example\.test\.{field}.* is not a domain name"):
        parse_zones([{**BASE, field: value}], "zones.yaml")


def test_header_fields_that_are_domain_names_are_accepted() -> None:
    (zone,) = parse_zones(
        [{**BASE, "nameservers": ["ns1", "NS2.Example.net."], "soa": {"rname": "dns-admin.example.test."}}],
        "zones.yaml",
    )
    assert "@ IN NS NS2.Example.net." in zone.text and " dns-admin.example.test. 1 " in zone.text


@pytest.mark.parametrize(
    "text",
    [
        "$GENERATE 1-65537 h$ A 10.0.0.1\n",
        "$GENERATE 1-40000 a$ A 10.0.0.1\n$GENERATE 1-40000 b$ A 10.0.0.1\n",
        "$GENERATE 0-4294967295 h$ A 10.0.0.1\n",
        '$GENERATE "1-10" h$ A 10.0.0.1\n',
        "$GENERATE (1-10) h$ A 10.0.0.1\n",
        "$GENERATE 10-1 h$ A 10.0.0.1\n",
    ],
)
def test_generate_beyond_the_cap_or_unparsable_is_refused(text: str) -> None:
    with pytest.raises(ZoneError, match=r"zone example\.test\.records: \$GENERATE"):
        parse_zones([{**BASE, "records": text}], "zones.yaml")


def test_generate_within_the_cap_is_accepted() -> None:
    (zone,) = parse_zones([{**BASE, "records": "$GENERATE 1-100/2 h$ A 10.0.0.$\n"}], "zones.yaml")
    assert "$GENERATE 1-100/2" in zone.text


# ---- finding 5: size and record caps ----------------------------------------------------------


def test_a_source_over_the_size_cap_is_refused_before_compiling() -> None:
    limits = ZoneLimits(max_bytes=1000)
    with pytest.raises(ZoneError, match=r"zone example\.test\.records: .*over the 1000-byte limit"):
        parse_zones([{**BASE, "records": "x IN TXT " + "a" * 1000 + "\n"}], "zones.yaml", limits)


def test_a_source_over_the_record_cap_is_refused_before_compiling() -> None:
    limits = ZoneLimits(max_records=50)
    records = "".join(f"h{i} IN A 10.0.0.1\n" for i in range(60))
    with pytest.raises(ZoneError, match=r"over the limit of 50 records"):
        parse_zones([{**BASE, "records": records}], "zones.yaml", limits)
    generated = "$GENERATE 1-60 h$ A 10.0.0.1\n"
    with pytest.raises(ZoneError, match=r"over the limit of 50 records"):
        zone_from_file("example.test.zone", HEADER + generated, "static", "d", limits)


def test_the_default_caps_are_the_documented_ones() -> None:
    assert ZoneLimits() == ZoneLimits(
        max_bytes=16 * 2**20, max_records=250_000, compile_seconds=30.0, compile_memory=512 * 2**20
    )
    assert zonemodel.GENERATE_CAP == 65_536


@pytest.mark.parametrize("text", ["a\x00b", "ns1 IN A 192.0.2.1\x1b[2J\n"])
def test_control_characters_are_refused(text: str) -> None:
    with pytest.raises(ZoneError, match="control character"):
        parse_zones([{**BASE, "records": text}], "zones.yaml")


# ---- finding 10: names are checked as strictly as helm does -----------------------------------


@pytest.mark.parametrize(
    "bad", ["evil\n.test", "evil.\ntest", "ex\u0430mple.test", "ex\u00e4mple.test", "\u212a.test", "٣.test"]
)
def test_zone_names_with_newlines_or_non_ascii_are_refused(bad: str) -> None:
    with pytest.raises(ZoneError, match="not a valid domain name"):
        zonemodel.normalize_name(bad, "here")


# ---- finding 3: a peer's status annotation ----------------------------------------------------

HOSTILE_STATUSES = [
    '{"healthy": true, "serials": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "[" * 1_000_000,
    '{"healthy": true, "serials": {"a.test": 1}, "pad": "' + "x" * 200_000 + '"}',
    '{"healthy": "false", "serials": {}}',
    '{"healthy": 1, "serials": {}}',
    '{"healthy": true, "serials": {"a.test": 1.5}}',
    '{"healthy": true, "serials": {"a.test": true}}',
    '{"healthy": true, "serials": {"a.test": "7"}}',
    '{"healthy": true, "serials": {"a.test": -1}}',
    '{"healthy": true, "serials": {"a.test": 4294967296}}',
    '{"healthy": true, "serials": {"a.test": NaN}}',
    '{"healthy": true, "serials": {"a.test": Infinity}}',
    '{"healthy": true, "serials": {"a.test": 1e400}}',
    '{"healthy": true, "serials": {"ex\u00e4mple.test": 1}}',
    '{"healthy": true, "serials": {"evil\\n.test": 1}}',
    '{"healthy": true, "serials": {"": 1}}',
    '{"healthy": true, "serials": []}',
    '{"healthy": true, "serials": {"a.test": 1, "A.TEST": 2}}',
    '{"healthy": true, "serials": {"a.test": 1}}\x00',
    json.dumps({"healthy": True, "serials": {f"z{i}.test": i for i in range(5000)}}),
    "null",
    "1" * 5000,
]


@pytest.mark.parametrize("text", HOSTILE_STATUSES, ids=range(len(HOSTILE_STATUSES)))
def test_a_hostile_status_counts_as_no_status_and_names_the_problem(text: str) -> None:
    status, problem = peers.parse_status(text)
    assert status is None
    assert problem and len(problem) < 200, problem
    assert Status.from_json(text) is None


def test_a_good_status_parses_and_unknown_fields_of_newer_agents_are_ignored() -> None:
    text = '{"healthy":true,"serials":{"a.test":1,"b.test":4294967295},"since":"v2"}'
    assert peers.parse_status(text) == (Status(True, {"a.test": 1, "b.test": 4294967295}), None)
    assert peers.parse_status(None) == (None, None)
    assert peers.parse_status("") == (None, None)


# ---- finding 4: a forged serial cannot turn the lift off --------------------------------------


def test_serials_far_from_the_live_one_are_ignored() -> None:
    live = 1000
    forged = [live + 2**31 - 1, live + 2**30, (live - 2**29) % 2**32]
    honest = [live, live + 5, live - 3, live + peers.SERIAL_WINDOW]
    kept, ignored = peers.plausible_serials(honest + forged, anchor=live)
    assert kept == honest and ignored == forged
    assert peers.plausible_serials([2**32 - 2], anchor=3) == ([2**32 - 2], [])  # wraps around


def test_the_lift_target_stays_within_rfc_1982_range_of_the_live_serial() -> None:
    """What roles._lift_serial computes: margin above the newest plausible serial."""
    live, margin = 1000, 1000
    kept, ignored = peers.plausible_serials([live + 2**31 - 1, live + 10], anchor=live)
    newest = peers.newest([*kept, live])
    assert newest is not None and ignored == [live + 2**31 - 1]
    target = peers.serial_add(newest, margin)
    assert target == live + 10 + margin and peers.serial_newer(target, live)
    # the worst a forger can do within the window still leaves the target newer than live
    kept, _ = peers.plausible_serials([live + peers.SERIAL_WINDOW], anchor=live)
    assert peers.serial_newer(peers.serial_add(peers.newest([*kept, live]) or live, 2**30 - 1), live)


def test_a_lift_that_did_not_move_the_serial_is_a_failure() -> None:
    assert peers.lift_problem("dyn.test", before=5, target=1005, after=1005) is None
    problem = peers.lift_problem("dyn.test", before=5, target=1005, after=5)
    assert problem == "dyn.test: serial still 5 after setting it to 1005"
    assert peers.lift_problem("dyn.test", before=5, target=1005, after=None) is not None


# ---- finding 10: settings are finite, bounded, ASCII; key names are names and distinct --------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"BIND_HA_LEASE_DURATION": "inf"}, "BIND_HA_LEASE_DURATION"),
        ({"BIND_HA_LEASE_DURATION": "1e400"}, "BIND_HA_LEASE_DURATION"),
        ({"BIND_HA_RETRY_PERIOD": "nan"}, "BIND_HA_RETRY_PERIOD"),
        ({"BIND_HA_LEASE_DURATION": "3000000000"}, "BIND_HA_LEASE_DURATION"),
        ({"BIND_HA_DNS_PORT": "٥٣٥٣"}, "BIND_HA_DNS_PORT"),
        ({"BIND_HA_SERIAL_MARGIN": "１０"}, "BIND_HA_SERIAL_MARGIN"),
        ({"BIND_HA_TRANSFER_KEY_NAME": 'x"; }; key "y'}, "BIND_HA_TRANSFER_KEY_NAME"),
        ({"BIND_HA_UPDATE_KEY_NAME": "upd\n.test"}, "BIND_HA_UPDATE_KEY_NAME"),
        ({"BIND_HA_UPDATE_KEY_NAME": "bind-ha-transfer"}, "BIND_HA_UPDATE_KEY_NAME"),
        ({"BIND_HA_UPDATE_KEY_NAME": "Bind-HA-Transfer."}, "BIND_HA_UPDATE_KEY_NAME"),
        ({"BIND_HA_UPDATE_KEY_NAME": "bind-ha-rndc"}, "BIND_HA_UPDATE_KEY_NAME"),
        ({"POD_NAME": "dns-0\nx"}, "POD_NAME"),
        ({"POD_NAMESPACE": "Dns"}, "POD_NAMESPACE"),
        ({"BIND_HA_LEASE_NAME": "a/b"}, "BIND_HA_LEASE_NAME"),
        ({"BIND_HA_ZONE_MAX_RECORDS": "0"}, "BIND_HA_ZONE_MAX_RECORDS"),
        ({"BIND_HA_ZONE_COMPILE_TIMEOUT": "inf"}, "BIND_HA_ZONE_COMPILE_TIMEOUT"),
    ],
)
def test_hostile_settings_are_refused_naming_the_variable(changes: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as rejected:
        settings.load({**REQUIRED, **changes})
    assert str(rejected.value).startswith(message), rejected.value


def test_every_number_setting_is_finite() -> None:
    loaded = settings.load(REQUIRED)
    timing = loaded.timing
    assert all(math.isfinite(x) for x in (timing.lease_duration, timing.renew_deadline, timing.retry_period))


# ---- finding 11: a TSIG secret is at least as long as its hash --------------------------------


@pytest.mark.parametrize(
    ("algorithm", "minimum"),
    [("hmac-sha224", 28), ("hmac-sha256", 32), ("hmac-sha384", 48), ("hmac-sha512", 64)],
)
def test_a_tsig_secret_shorter_than_its_hash_is_refused(algorithm: str, minimum: int) -> None:
    import base64

    short = base64.b64encode(b"k" * (minimum - 1)).decode()
    with pytest.raises(SecretError, match=rf"shorter than {minimum} bytes"):
        check_secret(short, algorithm, "update-secret")
    assert check_secret(base64.b64encode(b"k" * minimum).decode(), algorithm, "x")
    with pytest.raises(SecretError, match="not valid base64"):
        check_secret("not base64!", algorithm, "update-secret")
