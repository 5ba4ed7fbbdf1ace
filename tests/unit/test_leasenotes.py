"""The annotations bind-ha keeps on its Lease (pure): zones that held data, reseed requests."""

from __future__ import annotations

from bind_ha import leasenotes
from bind_ha.leasenotes import LeaseNotes

PREFIX = "bind-ha.io"


def test_zone_lists_are_parsed_leniently_and_written_canonically() -> None:
    parsed = leasenotes.parse_zones(" Dyn.Example.com., ext.example.com,,bad zone!, ")
    assert parsed.zones == {"dyn.example.com", "ext.example.com"} and parsed.rejected == ("bad zone!",)
    assert leasenotes.format_zones(["b.test", "a.test", "b.test"]) == "a.test,b.test"
    assert leasenotes.parse_zones(None).zones == frozenset()


def test_hostile_annotations_never_raise_and_are_capped() -> None:
    huge = ",".join(f"z{i}.test" for i in range(leasenotes.MAX_ZONES + 50))
    assert len(leasenotes.parse_zones(huge).zones) == leasenotes.MAX_ZONES
    notes, problems = leasenotes.read({f"{PREFIX}/reseed": "x" * 300 + ",ok.test"}, PREFIX)
    assert notes.reseed == {"ok.test"} and len(problems) == 1 and "reseed" in problems[0]


def test_notes_round_trip_and_leave_other_annotations_alone() -> None:
    notes = LeaseNotes(zones_with_data=frozenset({"dyn.test"}), reseed=frozenset())
    written = leasenotes.written({"team": "dns", f"{PREFIX}/reseed": "old.test"}, PREFIX, notes)
    assert written == {"team": "dns", f"{PREFIX}/zones-with-data": "dyn.test"}
    assert leasenotes.read(written, PREFIX) == (notes, ())


def test_a_zone_that_held_data_is_seeded_only_on_an_operators_request() -> None:
    held = LeaseNotes(zones_with_data=frozenset({"dyn.test"}))
    assert leasenotes.may_seed("new.test", held)
    assert not leasenotes.may_seed("dyn.test", held)
    assert leasenotes.may_seed("dyn.test", LeaseNotes(frozenset({"dyn.test"}), frozenset({"dyn.test"})))


def test_a_renewal_records_served_dynamic_zones_and_settles_reseed_requests() -> None:
    before = LeaseNotes(zones_with_data=frozenset({"old.test"}), reseed=frozenset({"dyn.test", "later.test"}))
    after = leasenotes.after_renewal(
        before, serving={"dyn.test", "static.test"}, dynamic={"dyn.test", "old.test", "later.test"}
    )
    assert after.zones_with_data == {"old.test", "dyn.test"}  # never forgets, adds only dynamic zones
    assert after.reseed == {"later.test"}  # not served yet: the request stays
