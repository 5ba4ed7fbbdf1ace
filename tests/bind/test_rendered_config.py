"""Every rendering the agent can produce passes named-checkconf (real BIND)."""

from __future__ import annotations

import pathlib

import pytest

from bind_ha.bind import checkconf
from bind_ha.render import render
from tests.unit.test_render import view


@pytest.mark.parametrize("role", ["primary", "secondary"])
@pytest.mark.parametrize("primary", ["10.0.0.1", "fd00::1", None])
@pytest.mark.parametrize("writable", [True, False])
def test_renderings_are_valid_bind_configuration(
    role: str, primary: str | None, writable: bool, tmp_path: pathlib.Path
) -> None:
    conf = tmp_path / "named.conf"
    rendered = view(role, primary_address=primary, data_dir=tmp_path, run_dir=tmp_path, writable=writable)
    conf.write_text(render(rendered))
    assert checkconf(conf) is None


def test_checkconf_reports_what_is_wrong(tmp_path: pathlib.Path) -> None:
    conf = tmp_path / "named.conf"
    conf.write_text("options { recursion maybe; };\n")
    problem = checkconf(conf)
    assert problem is not None and "maybe" in problem
