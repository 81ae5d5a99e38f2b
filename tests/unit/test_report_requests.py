"""Identity of report requests, reuse rules, follow countdowns, backfill windows and arguments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from spreports.errors import InvalidRequest, ReportCancelled, ReportFatal
from spreports.reports.backfill import BackfillPlan, split_windows
from spreports.reports.obtain import ReportSpec, follow_countdown, followed_for, report_outcome, reusable
from spreports.spapi.models import Report
from spreports.workers.producers import backfill_arguments

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def report(status: str, **extra: object) -> Report:
    body = {"reportId": "1", "reportType": "T", "processingStatus": status, "createdTime": "2026-11-28T10:00:00Z"}
    return Report.model_validate({**body, **extra})


def test_identical_requests_share_a_fingerprint_whatever_the_order_or_time_zone() -> None:
    a = ReportSpec.of("S", "T", ["B", "A"], {"y": "1", "x": "2"}, datetime(2026, 1, 1, 1, tzinfo=UTC))
    b = ReportSpec.of("S", "T", ["A", "B"], {"x": "2", "y": "1"}, datetime.fromisoformat("2026-01-01T02:00:00+01:00"))
    assert a.fingerprint == b.fingerprint
    assert ReportSpec.of("S", "T", ["A"]).fingerprint != ReportSpec.of("S2", "T", ["A"]).fingerprint
    assert ReportSpec.of("S", "T", ["A"]).fingerprint != ReportSpec.of("S", "T", ["A"], {"o": "1"}).fingerprint


def test_amazons_reports_match_on_type_marketplaces_and_window_but_never_with_options() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    listed = report("IN_QUEUE", marketplaceIds=["B", "A"], dataStartTime="2026-01-01T00:00:00.000Z")
    assert ReportSpec.of("S", "T", ["A", "B"], None, start).matches(listed)
    assert not ReportSpec.of("S", "T", ["A"], None, start).matches(listed)
    assert not ReportSpec.of("S", "T", ["A", "B"], None, start + timedelta(days=1)).matches(listed)
    assert not ReportSpec.of("S", "T", ["A", "B"], {"o": "1"}, start).matches(listed)


def test_reports_in_flight_and_fresh_done_ones_are_reusable() -> None:
    fresh = report("DONE", reportDocumentId="d", processingEndTime="2026-11-28T11:30:00Z")
    assert reusable(report("IN_QUEUE"), timedelta(hours=1), NOW) == "in-flight"
    assert reusable(report("IN_PROGRESS"), timedelta(0), NOW) == "in-flight"
    assert reusable(fresh, timedelta(hours=1), NOW) == "done"
    assert reusable(fresh, timedelta(minutes=10), NOW) is None
    assert reusable(report("FATAL"), timedelta(hours=1), NOW) is None
    assert reusable(report("CANCELLED"), timedelta(hours=1), NOW) is None


def test_without_a_reuse_window_a_done_report_is_never_reused_even_if_amazons_clock_runs_ahead() -> None:
    # A restated request passes no window: the DONE report Amazon says finished a minute from now is not it.
    ahead = report("DONE", reportDocumentId="d", processingEndTime="2026-11-28T12:01:00Z")
    assert reusable(ahead, timedelta(0), NOW) is None
    assert reusable(ahead, timedelta(hours=1), NOW) == "done"


def test_report_outcome_names_cancelled_and_fatal_reports() -> None:
    assert report_outcome(report("IN_PROGRESS"), "S") is None
    assert report_outcome(report("DONE", reportDocumentId="d"), "S").report_document_id == "d"  # type: ignore[union-attr]
    with pytest.raises(ReportCancelled, match=r"T report 1 of seller S was CANCELLED"):
        report_outcome(report("CANCELLED"), "S")
    with pytest.raises(ReportFatal, match=r"T report 1 of seller S ended FATAL.*error document e"):
        report_outcome(report("FATAL", reportDocumentId="e"), "S")


def test_follow_countdowns_grow_to_a_ceiling() -> None:
    assert [follow_countdown(n, 15, 300) for n in range(7)] == [15, 30, 60, 120, 240, 300, 300]
    assert followed_for(3, 15, 300) == 105
    assert follow_countdown(10_000, 15, 300) == 300


def test_a_range_splits_into_windows_no_longer_than_the_maximum() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    windows = split_windows(start, start + timedelta(days=90), timedelta(days=30))
    assert [(w.start - start).days for w in windows] == [0, 30, 60]
    assert all(w.end - w.start == timedelta(days=30) for w in windows)
    assert windows[0].data_end_time == windows[1].start - timedelta(seconds=1)
    assert len(split_windows(start, start + timedelta(days=91), timedelta(days=30))) == 4
    with pytest.raises(InvalidRequest, match="empty"):
        split_windows(start, start, timedelta(days=30))


def test_the_same_backfill_arguments_give_the_same_plan() -> None:
    args = backfill_arguments("T", date(2026, 1, 1), date(2026, 3, 31), now=NOW)
    assert args.data_start_time == datetime(2026, 1, 1, tzinfo=UTC)
    assert args.data_end_time == datetime(2026, 4, 1, tzinfo=UTC)  # the last day is included
    plan = BackfillPlan.of("S", "T", ["A"], args.data_start_time, args.data_end_time)
    again = BackfillPlan.of("S", "T", ["A"], datetime(2026, 1, 1), datetime(2026, 4, 1))
    assert plan.plan_id == again.plan_id and len(plan.windows) == 3
    # An end in the future is cut at the start of today: Amazon refuses data windows in the future.
    late = backfill_arguments("T", date(2026, 11, 1), date(2026, 12, 31), now=NOW)
    assert late.data_end_time == datetime(2026, 11, 28, tzinfo=UTC)
