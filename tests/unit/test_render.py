"""named.conf rendering (pure); bind/test_rendered_config.py checks it with named-checkconf."""

from __future__ import annotations

from pathlib import Path

from bind_ha.keys import TsigKey
from bind_ha.render import BLUE, GREEN, NamedView, ViewSpec, render
from bind_ha.zonemodel import ZoneSpec

STATIC = ZoneSpec(name="example.test", type="static", text="", origin="t")
DYNAMIC = ZoneSpec(name="dyn.test", type="dynamic", text="", origin="t")
KEYS = (
    TsigKey("xfr", "hmac-sha256", "c2VjcmV0c2VjcmV0c2VjcmV0"),
    TsigKey("upd", "hmac-sha256", "dXBkdXBkdXBkdXBk"),
    TsigKey("rndc", "hmac-sha256", "cm5kY3JuZGNybmRj"),
)
WRITABLE = frozenset({"dyn.test"})


def serving(
    role: str, primary_address: str | None = "10.0.0.1", writable: frozenset[str] = WRITABLE
) -> ViewSpec:
    return ViewSpec(
        BLUE, role, primary_address=primary_address, writable=writable if role == "primary" else frozenset()
    )


def view(role: str, *, staged: str | None = None, **changes: object) -> NamedView:
    views = (serving(role),)
    if staged is not None:
        views = (ViewSpec(GREEN, staged, staging=True, primary_address="10.0.0.1"), *views)
    base = NamedView(
        identity="p/u",
        views=views,
        zones=(STATIC, DYNAMIC),
        peers=("10.0.0.2", "10.0.0.3"),
        keys=KEYS,
        transfer_key="xfr",
        update_key="upd",
        rndc_key_name="rndc",
        dns_port=5353,
        listen_address="any",
        control_address="127.0.0.1",
        control_port=953,
        stats_port=8053,
        data_dir=Path("/data"),
        run_dir=Path("/run/b"),
    )
    return NamedView(**{**base.__dict__, **changes})


def test_a_primary_notifies_exactly_its_peers_and_takes_signed_updates_on_dynamic_zones() -> None:
    text = render(view("primary"))
    assert text.count("type primary;") == 2 and "type secondary" not in text
    assert 'also-notify { 10.0.0.2 port 5353 key "xfr"; 10.0.0.3 port 5353 key "xfr"; };' in text
    assert text.count('update-policy { grant "upd" zonesub ANY; };') == 1
    assert "notify explicit;" in text and "notify-delay 0;" in text and "masterfile-format raw;" in text


def test_a_secondary_follows_the_leader_and_forwards_signed_updates() -> None:
    text = render(view("secondary"))
    assert text.count('primaries { 10.0.0.1 port 5353 key "xfr"; };') == 2
    assert text.count('allow-update-forwarding { key "upd"; };') == 1
    assert "also-notify" not in text and "update-policy" not in text and "notify no;" in text


def test_a_secondary_with_no_known_leader_points_at_a_dead_loopback_port() -> None:
    text = render(view("secondary", views=(serving("secondary", primary_address=None),)))
    assert 'primaries { 127.0.0.1 port 9 key "xfr"; };' in text


def test_transfers_need_a_key_and_recursion_is_off() -> None:
    text = render(view("primary"))
    assert 'allow-transfer { key "xfr"; key "upd"; };' in text and "recursion no;" in text


def test_listen_addresses_follow_the_address_family() -> None:
    assert "listen-on port 5353 { 10.1.2.3; };" in render(view("primary", listen_address="10.1.2.3"))
    v6 = render(view("primary", listen_address="fd00::5"))
    assert "listen-on port 5353 { none; };" in v6 and "listen-on-v6 port 5353 { fd00::5; };" in v6


def test_equal_views_render_equal_text() -> None:
    assert render(view("primary")) == render(view("primary"))


def test_a_dynamic_zone_not_recorded_as_holding_data_takes_updates_only_from_the_agent() -> None:
    text = render(view("primary", views=(serving("primary", writable=frozenset()),)))
    assert 'update-policy { grant "rndc" zonesub ANY; };' in text and 'grant "upd"' not in text


def test_a_staging_view_comes_first_and_answers_only_the_agents_key() -> None:
    text = render(view("secondary", staged="primary"))
    assert text.index('view "green"') < text.index('view "blue"')
    assert 'match-clients { key "rndc"; };' in text and "match-clients { any; };" in text
    staged = text[text.index('view "green"') : text.index('view "blue"')]
    assert 'file "zones/green/dyn.test.db";' in staged and "notify no;" in staged
    assert 'update-policy { grant "rndc" zonesub ANY; };' in staged and "also-notify" not in staged
    assert 'file "zones/blue/dyn.test.db";' in text[text.index('view "blue"') :]


def test_a_staged_secondary_transfers_but_never_forwards_updates() -> None:
    text = render(view("primary", staged="secondary"))
    staged = text[text.index('view "green"') : text.index('view "blue"')]
    assert staged.count('primaries { 10.0.0.1 port 5353 key "xfr"; };') == 2
    assert "allow-update-forwarding" not in staged
