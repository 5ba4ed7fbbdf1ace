"""Probes that wait at start (bind_ha.health.Routes): a normal start must not log failed
probes, so a probe asked with ?wait= waits for its condition while it has never held, and a
route's fallback answers when the wait runs out (pure: fake clock, no sleeping)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bind_ha.health import MAX_WAIT, Route, Routes, wait_of


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def pause(self, seconds: float) -> None:
        self.now += seconds


def condition_after(clock: FakeTime, seconds: float) -> Callable[[], tuple[bool, str]]:
    return lambda: (clock.now >= seconds, f"at {clock.now:.1f}")


def answer(routes: Routes, clock: FakeTime, path: str, wait: float) -> tuple[bool, str] | None:
    return routes.answer(path, wait, monotonic=clock.monotonic, pause=clock.pause)


def test_a_probe_waits_for_its_condition_the_first_time() -> None:
    clock = FakeTime()
    routes = Routes()
    routes.use({"/readyz": condition_after(clock, 3.0)})
    ok, _detail = answer(routes, clock, "/readyz", 9) or (False, "")
    assert ok and 3.0 <= clock.now < 3.2


def test_without_wait_a_probe_answers_at_once() -> None:
    clock = FakeTime()
    routes = Routes()
    routes.use({"/readyz": condition_after(clock, 3.0)})
    assert answer(routes, clock, "/readyz", 0) == (False, "at 0.0")
    assert clock.now == 0.0


def test_a_wait_that_runs_out_fails_or_gives_the_fallback() -> None:
    clock = FakeTime()
    routes = Routes()
    routes.use(
        {
            "/readyz": condition_after(clock, 100.0),
            "/started": Route(condition_after(clock, 100.0), fallback=lambda: (True, "answers queries")),
        }
    )
    ok, _ = answer(routes, clock, "/readyz", 2) or (True, "")
    assert not ok and 2.0 <= clock.now < 2.2
    assert answer(routes, clock, "/started", 2) == (True, "answers queries")


def test_once_it_held_a_probe_no_longer_waits() -> None:
    """A running pod that turns unready must say so at once, not after a wait."""
    clock = FakeTime()
    healthy = [True]
    routes = Routes()
    routes.use({"/readyz": lambda: (healthy[0], "")})
    assert answer(routes, clock, "/readyz", 9) == (True, "")
    healthy[0] = False
    assert answer(routes, clock, "/readyz", 9) == (False, "")
    assert clock.now == 0.0


def test_a_waiting_request_sees_routes_replaced_meanwhile() -> None:
    """The agent serves /readyz before it has what answers it; the real probe replaces it."""
    clock = FakeTime()
    routes = Routes()
    routes.use({"/readyz": lambda: (False, "starting")})

    def pause(seconds: float) -> None:
        clock.pause(seconds)
        if clock.now >= 1.0:
            routes.use({"/readyz": lambda: (True, "configured")})

    assert routes.answer("/readyz", 9, monotonic=clock.monotonic, pause=pause) == (True, "configured")
    assert clock.now < 1.2


def test_an_unknown_path_is_none() -> None:
    assert Routes().answer("/nothing", 5) is None


@pytest.mark.parametrize(
    ("query", "wait"),
    [("wait=9", 9.0), ("", 0.0), ("wait=x", 0.0), ("wait=nan", 0.0), ("wait=inf", 0.0), ("wait=-3", -3.0)],
)
def test_the_wait_of_a_query_string(query: str, wait: float) -> None:
    assert wait_of(query) == wait


def test_a_wait_is_capped() -> None:
    clock = FakeTime()
    routes = Routes()
    routes.use({"/readyz": lambda: (False, "never")})
    assert answer(routes, clock, "/readyz", 10_000) == (False, "never")
    assert MAX_WAIT <= clock.now < MAX_WAIT + 0.2
    clock.now = 0.0
    assert answer(routes, clock, "/readyz", -3) == (False, "never")
    assert clock.now == 0.0
