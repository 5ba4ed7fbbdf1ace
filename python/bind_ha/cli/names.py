"""The chart's naming rules (chart/templates/_helpers.tpl), for when the API cannot tell.

A real pod names its Lease in its environment (BIND_HA_LEASE_NAME), and the command
prefers that; these rules are the fallback for a release whose pods do not say
(scaled to zero, or pods made by something other than the StatefulSet). A chart
test checks them against `helm template`.
"""

from __future__ import annotations

CHART_NAME = "bind-ha"
MAX_NAME = 63


def _trunc(text: str, length: int) -> str:
    """Helm's `trunc N | trimSuffix "-"` (trimSuffix removes one dash, not all)."""
    return text[:length].removesuffix("-")


def fullname(release: str) -> str:
    """bind-ha.fullname without overrides: the release name alone when it contains the chart's."""
    if CHART_NAME in release:
        return _trunc(release, MAX_NAME)
    return _trunc(f"{release}-{CHART_NAME}", MAX_NAME)


def suffixed(release: str, suffix: str) -> str:
    """bind-ha.suffixed: "<fullname>-<suffix>" within 63 characters, the suffix kept whole."""
    base = _trunc(fullname(release), MAX_NAME - 1 - len(suffix))
    return f"{base}-{suffix}"


def lease_name(release: str) -> str:
    return suffixed(release, "leader")


def primary_service_name(release: str) -> str:
    return suffixed(release, "primary")


def tsig_secret_name(release: str) -> str:
    return suffixed(release, "tsig")
