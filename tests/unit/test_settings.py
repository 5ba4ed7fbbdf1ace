"""Agent settings: invalid values stop the agent with a message naming the variable (pure)."""

from __future__ import annotations

import pytest

from bind_ha import settings
from bind_ha.settings import ENVIRONMENT, SettingsError

REQUIRED = {
    "POD_NAME": "dns-0",
    "POD_UID": "u-1",
    "POD_NAMESPACE": "dns",
    "POD_IP": "10.0.0.5",
    "BIND_HA_LEASE_NAME": "dns-bind-ha-leader",
    "BIND_HA_PEER_SELECTOR": "app=dns",
}


def test_defaults_are_the_documented_ones() -> None:
    loaded = settings.load(REQUIRED)
    assert (loaded.timing.lease_duration, loaded.timing.renew_deadline, loaded.timing.retry_period) == (
        10,
        6,
        2,
    )
    assert loaded.identity == "dns-0/u-1" and loaded.role_label == "bind-ha.io/role"
    assert loaded.dns_port == int(ENVIRONMENT["BIND_HA_DNS_PORT"][1] or 0) == 5353


@pytest.mark.parametrize("missing", sorted(REQUIRED))
def test_a_missing_required_variable_is_named(missing: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != missing}
    with pytest.raises(SettingsError, match=f"^{missing} is required"):
        settings.load(env)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"BIND_HA_LEASE_DURATION": "6"},
            "BIND_HA_LEASE_DURATION (6) must be greater than BIND_HA_RENEW_DEADLINE (6)",
        ),
        (
            {"BIND_HA_RETRY_PERIOD": "5"},
            "BIND_HA_RENEW_DEADLINE (6) must be greater than 1.2 x BIND_HA_RETRY_PERIOD (5)",
        ),
        (
            {"BIND_HA_RENEW_DEADLINE": "7"},
            "BIND_HA_LEASE_DURATION (10) - BIND_HA_RENEW_DEADLINE (7) = 3s must be greater than the longest "
            "API request (BIND_HA_RENEW_DEADLINE / 2 = 3.5s) plus the fence latency (0.5s) = 4s",
        ),
        (
            {"BIND_HA_LEASE_DURATION": "4", "BIND_HA_RENEW_DEADLINE": "3", "BIND_HA_RETRY_PERIOD": "1"},
            "BIND_HA_LEASE_DURATION (4) - BIND_HA_RENEW_DEADLINE (3) = 1s must be greater than",
        ),
        ({"BIND_HA_TERMINATION_GRACE_PERIOD": "-1"}, "BIND_HA_TERMINATION_GRACE_PERIOD=-1 must be between"),
        ({"BIND_HA_RETRY_PERIOD": "0"}, "BIND_HA_RETRY_PERIOD=0 must be greater than 0"),
        ({"BIND_HA_LEASE_DURATION": "ten"}, "BIND_HA_LEASE_DURATION='ten' is not a number of seconds"),
        ({"BIND_HA_DNS_PORT": "70000"}, "BIND_HA_DNS_PORT=70000 is not a port number"),
        ({"POD_IP": "pod-ip"}, "POD_IP='pod-ip' is not an IP address"),
        ({"BIND_HA_LABEL_PREFIX": "Bad_Prefix"}, "BIND_HA_LABEL_PREFIX='Bad_Prefix' is not a DNS subdomain"),
        ({"BIND_HA_TSIG_ALGORITHM": "hmac-md5"}, "BIND_HA_TSIG_ALGORITHM='hmac-md5' must be one of"),
        (
            {"BIND_HA_ZONES_DIR_TYPE": "primary"},
            "BIND_HA_ZONES_DIR_TYPE='primary' must be one of static, dynamic",
        ),
        ({"BIND_HA_SERIAL_MARGIN": "0"}, "BIND_HA_SERIAL_MARGIN=0 must be between 1 and 2"),
    ],
)
def test_invalid_values_are_named(changes: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as rejected:
        settings.load({**REQUIRED, **changes})
    assert str(rejected.value).startswith(message.replace("\\", ""))


def test_every_variable_has_a_meaning() -> None:
    assert all(meaning for meaning, _default in ENVIRONMENT.values())


def test_the_fast_failover_timing_of_the_examples_is_valid() -> None:
    timing = settings.load(
        {
            **REQUIRED,
            "BIND_HA_LEASE_DURATION": "4",
            "BIND_HA_RENEW_DEADLINE": "2",
            "BIND_HA_RETRY_PERIOD": "1",
        }
    ).timing
    assert timing.lease_duration - timing.renew_deadline > timing.request_timeout + settings.FENCE_LATENCY


def test_a_stopping_primary_waits_within_the_termination_grace_period() -> None:
    assert settings.load(REQUIRED).handover_wait == 30 - settings.HANDOVER_RESERVE
    assert settings.load({**REQUIRED, "BIND_HA_TERMINATION_GRACE_PERIOD": "60"}).handover_wait == 55
    assert settings.load({**REQUIRED, "BIND_HA_TERMINATION_GRACE_PERIOD": "2"}).handover_wait == 1
