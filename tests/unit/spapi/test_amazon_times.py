"""A report's times from Amazon, however far in the past or future, never make a comparison overflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spreports.reports.obtain import ReportSpec, reusable
from spreports.spapi.models import Report

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

# dataStartTime/createdTime as sent -> the instant kept, in UTC
TIMES: dict[str, datetime] = {
    "0001-01-01T00:00:00+01:00": datetime.min.replace(tzinfo=UTC),  # year 0 in UTC: the first instant
    "0001-01-01T00:00:00+14:00": datetime.min.replace(tzinfo=UTC),
    "0001-01-01T00:00:00Z": datetime.min.replace(tzinfo=UTC),
    "9999-12-31T23:59:59-01:00": datetime.max.replace(tzinfo=UTC),  # year 10000 in UTC: the last instant
    "9999-12-31T23:00:00-12:00": datetime.max.replace(tzinfo=UTC),
    "9999-12-31T23:59:59Z": datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
    "2026-12-07T10:00:00+14:00": datetime(2026, 12, 6, 20, 0, tzinfo=UTC),
    "2026-12-07T10:00:00-12:00": datetime(2026, 12, 7, 22, 0, tzinfo=UTC),
}


def report(moment: str) -> Report:
    return Report.model_validate({
        "reportId": "1", "reportType": "GET_X", "processingStatus": "DONE", "reportDocumentId": "D",
        "marketplaceIds": ["ATVPDKIKX0DER"], "createdTime": moment, "dataStartTime": moment,
        "dataEndTime": moment, "processingStartTime": moment, "processingEndTime": moment,
    })  # fmt: skip


@pytest.mark.parametrize(("sent", "kept"), TIMES.items(), ids=TIMES.keys())
def test_a_far_time_is_kept_in_utc_and_compares(sent: str, kept: datetime) -> None:
    found = report(sent)
    assert found.created_time == found.data_start_time == found.processing_end_time == kept
    assert found.created_time.utcoffset() == timedelta(0)
    spec = ReportSpec.of("S", "GET_X", ["ATVPDKIKX0DER"], data_start_time=NOW, data_end_time=NOW)
    assert not spec.matches(found)
    assert reusable(found, timedelta(hours=1), NOW) in (None, "done")
