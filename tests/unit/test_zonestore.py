"""Zone files per named view on the pod's volume (files only, no named)."""

from __future__ import annotations

import pathlib

import pytest

from bind_ha.render import BLUE, GREEN
from bind_ha.zonestore import ZoneStore


def test_the_serving_view_is_blue_until_recorded_and_an_unreadable_record_means_blue(
    tmp_path: pathlib.Path,
) -> None:
    store = ZoneStore(tmp_path)
    assert store.serving() == BLUE
    store.set_serving(GREEN)
    assert store.serving() == GREEN
    (tmp_path / "serving-view").write_text("purple\n")
    assert store.serving() == BLUE
    with pytest.raises(ValueError, match="no such view"):
        store.set_serving("purple")


def test_a_copy_carries_the_journal_and_replaces_a_stale_one(tmp_path: pathlib.Path) -> None:
    store = ZoneStore(tmp_path)
    store.directory(BLUE).mkdir(parents=True)
    (store.file(BLUE, "dyn.test.db")).write_bytes(b"zone")
    (store.directory(BLUE) / "dyn.test.db.jnl").write_bytes(b"journal")
    store.directory(GREEN).mkdir(parents=True)
    (store.directory(GREEN) / "dyn.test.db.jnl").write_bytes(b"stale")
    assert store.copy("dyn.test.db", BLUE, GREEN)
    assert (store.directory(GREEN) / "dyn.test.db.jnl").read_bytes() == b"journal"
    (store.directory(BLUE) / "dyn.test.db.jnl").unlink()
    assert store.copy("dyn.test.db", BLUE, GREEN)
    assert not (store.directory(GREEN) / "dyn.test.db.jnl").exists()
    assert not store.copy("absent.test.db", BLUE, GREEN) and store.has_data(GREEN, "dyn.test.db")


def test_only_the_view_that_does_not_serve_may_be_emptied(tmp_path: pathlib.Path) -> None:
    store = ZoneStore(tmp_path)
    store.directory(GREEN).mkdir(parents=True)
    store.file(GREEN, "x.db").write_text("old")
    store.empty(GREEN)
    assert store.directory(GREEN).is_dir() and not any(store.directory(GREEN).iterdir())
    with pytest.raises(ValueError, match="serving view"):
        store.empty(BLUE)


def test_zone_files_of_the_flat_layout_move_into_the_serving_view(tmp_path: pathlib.Path) -> None:
    store = ZoneStore(tmp_path)
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "dyn.test.db").write_text("data")
    (tmp_path / "zones" / "dyn.test.db.jnl").write_text("journal")
    store.adopt_flat_layout()
    assert store.file(BLUE, "dyn.test.db").read_text() == "data"
    assert (store.directory(BLUE) / "dyn.test.db.jnl").read_text() == "journal"
    assert not (tmp_path / "zones" / "dyn.test.db").exists()
