"""Role switches as explicit transitions of one value (pure)."""

from __future__ import annotations

import pytest

from bind_ha.layout import Layout, abandon, flip, stage, views
from bind_ha.render import BLUE, GREEN


def test_a_promotion_stages_a_primary_beside_the_serving_secondary_then_flips_to_it() -> None:
    start = Layout(serving=BLUE, role="secondary")
    staged = stage(start, "primary")
    assert staged == Layout(BLUE, "secondary", "primary") and staged.staging == GREEN
    assert staged.primary_anywhere  # the supervisor's fence covers the staged zones
    assert flip(staged) == Layout(serving=GREEN, role="primary")
    assert abandon(staged) == start and not abandon(staged).primary_anywhere


def test_one_switch_at_a_time() -> None:
    with pytest.raises(ValueError, match="already under way"):
        stage(stage(Layout(BLUE, "primary"), "secondary"), "primary")
    with pytest.raises(ValueError, match="no switch"):
        flip(Layout(BLUE, "primary"))


def test_views_put_the_staging_view_first_and_open_only_a_serving_primary_to_clients() -> None:
    writable = frozenset({"dyn.test"})
    staged, serving = views(Layout(BLUE, "secondary", "primary"), leader="10.0.0.1", writable=writable)
    assert (staged.name, staged.staging, staged.writable, staged.primary_address) == (
        GREEN,
        True,
        frozenset(),
        None,
    )
    assert (serving.name, serving.role, serving.primary_address) == (BLUE, "secondary", "10.0.0.1")
    (primary,) = views(Layout(GREEN, "primary"), leader=None, writable=writable)
    assert primary.writable == writable and not primary.staging
    demoting = views(Layout(GREEN, "primary", "secondary"), leader="10.0.0.9", writable=frozenset())
    assert [(v.name, v.role, v.primary_address) for v in demoting] == [
        (BLUE, "secondary", "10.0.0.9"),
        (GREEN, "primary", None),
    ]
