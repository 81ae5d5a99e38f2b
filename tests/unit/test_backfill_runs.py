"""Which run drives a backfill: the lease's rules on a fake clock, and runs that never share a window."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import fakeredis
import pytest

from spreports.errors import RequestPending
from spreports.reports.backfill import BackfillPlan, BackfillProgress, BackfillRound
from spreports.reports.backfill_runs import ROUND_HOLD, Lease, RunLease, drive
from spreports.reports.obtain import Finished, RequestRegistry
from spreports.spapi.models import Report

ORDERS = "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL"
START = datetime(2026, 1, 1, tzinfo=UTC)
GRACE = timedelta(seconds=120)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 28, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeReports:
    """Amazon's reports as far as a backfill round reads them: every report stays IN_PROGRESS."""

    def __init__(self) -> None:
        self.calls = 0
        self.created: list[datetime | None] = []
        #: Called inside createReport, while the request is at Amazon.
        self.during_create: Callable[[], None] = lambda: None

    def get_report(self, report_id: str) -> Report:
        self.calls += 1
        body = {"reportId": report_id, "reportType": ORDERS, "processingStatus": "IN_PROGRESS",
                "createdTime": "2026-11-28T10:00:00Z"}  # fmt: skip
        return Report.model_validate(body)

    def get_reports(self, *args: Any, **kwargs: Any) -> Iterator[Report]:
        self.calls += 1
        return iter(())

    def create_report(
        self, report_type: str, marketplace_ids: Sequence[str], *, data_start_time: datetime | None = None, **_: Any
    ) -> str:
        self.calls += 1
        self.during_create()
        self.created.append(data_start_time)
        return f"report-{len(self.created)}"


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_one_run_holds_the_lease_until_it_is_late_by_more_than_the_grace(
    client: fakeredis.FakeRedis, clock: Clock
) -> None:
    lease = RunLease(client, "plan", grace=GRACE)
    assert lease.current() is None
    first = lease.take("A", now=clock(), hold=timedelta(seconds=30))
    assert first.driving and first.lease.run_id == "A" and first.replaced is None
    assert first.lease.due == clock.now + timedelta(seconds=30)

    clock.advance(30 + 120)  # exactly at the end of the grace: A is late, not yet dead
    second = lease.take("B", now=clock(), hold=timedelta(seconds=30))
    assert not second.driving and second.lease.run_id == "A"
    assert not lease.renew("B", now=clock(), hold=timedelta(seconds=30)), "only the holder renews"
    assert lease.renew("A", now=clock(), hold=timedelta(seconds=10))
    assert lease.current() == Lease("A", clock.now + timedelta(seconds=10))

    clock.advance(10 + 120 + 1)
    taken = lease.take("B", now=clock(), hold=timedelta(seconds=30))
    assert taken.driving and taken.lease.run_id == "B" and taken.lease.took_over_from == "A"
    assert taken.replaced is not None and taken.replaced.run_id == "A"
    # A comes back after all: it lost the lease, and follows B.
    assert not lease.renew("A", now=clock(), hold=timedelta(seconds=30))
    back = lease.take("A", now=clock(), hold=timedelta(seconds=30))
    assert not back.driving and back.lease.run_id == "B"
    # B's own renewals and takes keep the record of whom it took over from, and replace nobody.
    again = lease.take("B", now=clock(), hold=timedelta(seconds=5))
    assert again.driving and again.replaced is None and again.lease.took_over_from == "A"
    assert lease.renew("B", now=clock(), hold=timedelta(seconds=5))
    current = lease.current()
    assert current is not None and current.took_over_from == "A" and current.due == clock.now + timedelta(seconds=5)


def backfill(client: fakeredis.FakeRedis, api: FakeReports, parallel: int) -> tuple[BackfillProgress, BackfillRound]:
    plan = BackfillPlan.of("S", ORDERS, ["M"], START, START + timedelta(days=90))
    found: list[Finished] = []
    deps = BackfillRound(
        api=api, registry=RequestRegistry(client), find=lambda _: None, enqueue=found.append,
        reuse_done=timedelta(0), check_amazon=False, parallel=parallel,
    )  # fmt: skip
    return BackfillProgress(client, plan), deps


def test_a_second_run_follows_the_driving_one_and_requests_nothing(client: fakeredis.FakeRedis, clock: Clock) -> None:
    api = FakeReports()
    progress, deps = backfill(client, api, parallel=1)
    lease = RunLease(client, progress.plan.plan_id, grace=GRACE)

    first = drive(progress, lease, deps, run_id="A", clock=clock)
    assert len(api.created) == 1 and first["requested"] == 1
    assert (first["run_id"], first["driven_by"], first["took_over_from"]) == ("A", "A", None)
    calls = api.calls
    for _ in range(3):
        clock.advance(30)
        followed = drive(progress, lease, deps, run_id="B", clock=clock)
        assert (followed["run_id"], followed["driven_by"]) == ("B", "A")
        assert followed["windows"] == first["windows"]
    assert api.calls == calls, "a following run calls Amazon for nothing"

    # A stops coming back: once it is late by more than the grace, B takes over where it stopped.
    clock.advance(ROUND_HOLD.total_seconds() + GRACE.total_seconds())
    resumed = drive(progress, lease, deps, run_id="B", clock=clock)
    assert (resumed["driven_by"], resumed["took_over_from"]) == ("B", "A")
    assert resumed["requested"] == 1 and len(api.created) == 1, "window 0 is at Amazon: followed, not requested again"


def test_runs_that_meet_inside_a_request_never_both_create_a_window(client: fakeredis.FakeRedis, clock: Clock) -> None:
    """A (slow at Amazon, so taken for dead) and B (its successor) each request under their own claim."""
    api = FakeReports()
    progress, deps = backfill(client, api, parallel=2)
    lease = RunLease(client, progress.plan.plan_id, grace=GRACE)
    inner: list[BaseException] = []

    def b_takes_over() -> None:
        api.during_create = lambda: None
        clock.advance(ROUND_HOLD.total_seconds() + GRACE.total_seconds() + 1)
        try:
            drive(progress, lease, deps, run_id="B", clock=clock)
        except RequestPending as exc:  # A's claim on window 0 is A's alone
            inner.append(exc)

    api.during_create = b_takes_over
    summary = drive(progress, lease, deps, run_id="A", clock=clock)

    assert len(inner) == 1
    assert api.created == [START], "A created window 0; B did not create it too, A requested no more once B drove"
    assert summary["requested"] == 1 and summary["driven_by"] == "B"
    # B's next turn follows window 0 and requests window 1: every window is created once.
    clock.advance(1)
    after = drive(progress, lease, deps, run_id="B", clock=clock)
    assert after["requested"] == 2 and api.created == [START, START + timedelta(days=30)]
