"""Every rendering the agent can produce passes named-checkconf (real BIND)."""

from __future__ import annotations

import pathlib

import pytest

from bind_ha.bind import checkconf
from bind_ha.layout import Layout, views
from bind_ha.render import BLUE, render
from tests.unit.test_render import view


@pytest.mark.parametrize("role", ["primary", "secondary"])
@pytest.mark.parametrize("staged", [None, "primary", "secondary"])
@pytest.mark.parametrize("primary", ["10.0.0.1", "fd00::1", None])
@pytest.mark.parametrize("writable", [frozenset({"dyn.test"}), frozenset()])
def test_renderings_are_valid_bind_configuration(
    role: str, staged: str | None, primary: str | None, writable: frozenset[str], tmp_path: pathlib.Path
) -> None:
    conf = tmp_path / "named.conf"
    layout = Layout(serving=BLUE, role=role, staged=staged)
    rendered = view(
        role, views=views(layout, leader=primary, writable=writable), data_dir=tmp_path, run_dir=tmp_path
    )
    conf.write_text(render(rendered))
    assert checkconf(conf) is None


def test_checkconf_reports_what_is_wrong(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "named.conf"
    conf.write_text("options { recursion maybe; };\n")
    problem = checkconf(conf)
    assert problem is not None and "maybe" in problem
