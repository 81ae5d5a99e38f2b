"""Schedules run as Amazon runs them (a month is a calendar month, a past start is moved on, not caught up),
and reports older than 90 days are gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spreports.simulator.clock import SimClock
from spreports.simulator.config import Faults, SimulatorConfig
from spreports.simulator.world import World

SELLER = "A1SIMULATEDSELLER"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
US = ("ATVPDKIKX0DER",)


def _world(start: datetime) -> World:
    clock = SimClock(start=start)
    return World(SimulatorConfig(seed=3), clock, Faults())


def _created(world: World) -> list[datetime]:
    return sorted(world.clock.at(r.created) for r in world.reports.values())


def test_a_monthly_schedule_runs_on_the_same_day_of_each_calendar_month() -> None:
    start = datetime(2025, 1, 10, tzinfo=UTC)
    world = _world(start)
    first = world.clock.seconds_of(datetime(2025, 1, 31, 2, tzinfo=UTC))
    world.put_schedule(SELLER, LISTINGS, US, "P1M", first, {})
    # Jan 31 -> Feb 28 (clamped) -> Mar 31 (back to the 31st, no drift) -> Apr 30 -> May 31.
    world.clock.advance((datetime(2025, 5, 31, 3, tzinfo=UTC) - start).total_seconds())
    world.tick()
    assert [d.date().isoformat() for d in _created(world)] == [
        "2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31",
    ]  # fmt: skip
    [schedule] = world.schedules.values()
    assert world.clock.at(schedule.next_at) == datetime(2025, 6, 30, 2, tzinfo=UTC)


def test_a_monthly_schedule_without_a_start_first_runs_a_calendar_month_from_now() -> None:
    world = _world(datetime(2025, 2, 1, 12, tzinfo=UTC))
    schedule = world.put_schedule(SELLER, LISTINGS, US, "P1M", None, {})
    # February has 28 days: a calendar month from Feb 1 is Mar 1, not 30 days later (Mar 3).
    # (the simulated clock runs on from its start while the test runs: a bound, not an equality)
    assert timedelta(0) <= world.clock.at(schedule.next_at) - datetime(2025, 3, 1, 12, tzinfo=UTC) < timedelta(hours=1)


def test_a_past_start_is_moved_to_the_next_future_run_and_missed_runs_are_not_made() -> None:
    now = datetime(2025, 6, 15, 10, 30, tzinfo=UTC)
    world = _world(now)
    long_ago = world.clock.seconds_of(now - timedelta(days=30, hours=1))  # 720 missed hourly runs
    schedule = world.put_schedule(SELLER, LISTINGS, US, "PT1H", long_ago, {})
    assert world.clock.at(schedule.next_at) == datetime(2025, 6, 15, 11, 30, tzinfo=UTC)
    world.tick()
    assert world.reports == {}  # nothing fired for the missed periods
    world.clock.advance(3600)
    world.tick()
    assert _created(world) == [datetime(2025, 6, 15, 11, 30, tzinfo=UTC)]


def test_a_past_monthly_start_keeps_its_day_and_time() -> None:
    now = datetime(2025, 6, 15, tzinfo=UTC)
    world = _world(now)
    schedule = world.put_schedule(
        SELLER, LISTINGS, US, "P1M", world.clock.seconds_of(datetime(2024, 12, 20, 2, tzinfo=UTC)), {}
    )
    assert world.clock.at(schedule.next_at) == datetime(2025, 6, 20, 2, tzinfo=UTC)
    world.tick()
    assert world.reports == {}


def test_first_run_after_counts_strictly_later_runs() -> None:
    from spreports.simulator.periods import first_run_after, occurrence

    first = datetime(2025, 1, 31, tzinfo=UTC)
    assert first_run_after(first, "P1D", first) == 1
    assert first_run_after(first, "P1D", first - timedelta(seconds=1)) == 0
    assert occurrence(first, "P1M", first_run_after(first, "P1M", datetime(2025, 2, 28, tzinfo=UTC))) == datetime(
        2025, 3, 31, tzinfo=UTC
    )


def test_reports_older_than_90_days_are_not_retained() -> None:
    world = _world(datetime(2025, 6, 15, tzinfo=UTC))
    old = world.create_report(SELLER, LISTINGS, US, at=world.clock.seconds() - 90 * 86400 - 1)
    recent = world.create_report(SELLER, LISTINGS, US, at=world.clock.seconds() - 89 * 86400)
    assert not world.retained(old) and world.retained(recent)
    world.clock.advance(86400 + 1)
    assert not world.retained(recent)
