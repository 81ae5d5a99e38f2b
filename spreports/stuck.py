"""Reports stuck IN_QUEUE or IN_PROGRESS far longer than their type takes: found, logged, counted, re-driven.

Amazon leaves some reports IN_QUEUE or IN_PROGRESS for hours or days. The sweep calls
:func:`handle_stuck_reports` per seller: every report of the given types older than its threshold
(:func:`threshold_for`) is logged and counted in the Redis hash ``spreports:stuck:<reportType>``
(``in_queue``, ``in_progress``, ``requeued``). An IN_QUEUE one is cancelled (only IN_QUEUE reports can
be) and, with ``requeue``, requested again once with the same type, marketplaces and data window (a
Redis mark keeps it to once per report); an IN_PROGRESS one cannot be cancelled and is only reported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import redis

from spreports.spapi.models import Report

__all__ = ["DEFAULT_THRESHOLD", "THRESHOLDS", "StuckReports", "handle_stuck_reports", "threshold_for"]

log = logging.getLogger(__name__)

KEY_PREFIX = "spreports:stuck:"
REQUEUED_PREFIX = f"{KEY_PREFIX}requeued:"
#: getReports takes at most this many report types a call.
MAX_TYPES_PER_CALL = 10
REQUEUED_TTL_SECONDS = 90 * 24 * 3600  # Amazon keeps reports 90 days
#: Most reports finish within minutes; a report still waiting after this is stuck.
DEFAULT_THRESHOLD = timedelta(hours=2)
#: Types known to take longer as a rule.
THRESHOLDS: dict[str, timedelta] = {
    "GET_SALES_AND_TRAFFIC_REPORT": timedelta(hours=4),
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL": timedelta(hours=4),
}


def threshold_for(report_type: str) -> timedelta:
    """How long a report of ``report_type`` may stay IN_QUEUE or IN_PROGRESS before it counts as stuck."""
    return THRESHOLDS.get(report_type, DEFAULT_THRESHOLD)


class ReportsClient(Protocol):
    """The SP-API calls this needs (an :class:`~spreports.spapi.SpapiClient`)."""

    def get_reports(
        self, report_types: Sequence[str] | None = ..., processing_statuses: Sequence[str] | None = ...
    ) -> Iterable[Report]: ...

    def cancel_report(self, report_id: str) -> None: ...

    def create_report(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        *,
        data_start_time: datetime | None = ...,
        data_end_time: datetime | None = ...,
    ) -> str: ...


@dataclass
class StuckReports:
    """What one pass found and did."""

    in_queue: list[str] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    requested_again: dict[str, str] = field(default_factory=dict)  # old report id -> new report id


def handle_stuck_reports(
    client: ReportsClient,
    store: redis.Redis,
    seller_id: str,
    report_types: Sequence[str],
    *,
    now: datetime,
    requeue: bool = True,
) -> StuckReports:
    """Find, log and count the seller's stuck reports; cancel the IN_QUEUE ones and request them again once."""
    found = StuckReports()
    reports: list[Report] = []
    for start in range(0, len(report_types), MAX_TYPES_PER_CALL):  # getReports takes at most 10 types
        types = list(report_types[start : start + MAX_TYPES_PER_CALL])
        reports.extend(client.get_reports(types, ["IN_QUEUE", "IN_PROGRESS"]))
    for report in reports:
        age = now - report.created_time
        if age <= threshold_for(report.report_type):
            continue
        status = report.processing_status
        store.hincrby(f"{KEY_PREFIX}{report.report_type}", status.lower(), 1)
        log.warning("report %s (%s) of seller %s is stuck %s for %s",
                    report.report_id, report.report_type, seller_id, status, age)  # fmt: skip
        if status == "IN_PROGRESS":
            found.in_progress.append(report.report_id)  # Amazon cannot cancel it: reported only
            continue
        found.in_queue.append(report.report_id)
        mark = f"{REQUEUED_PREFIX}{seller_id}:{report.report_id}"
        # The new report first, then the cancel: a failure in between leaves the old one queued (the next
        # sweep finds it again), never a cancelled report with no successor.
        if requeue and store.set(mark, 1, nx=True, ex=REQUEUED_TTL_SECONDS):
            try:
                new_id = client.create_report(
                    report.report_type,
                    report.marketplace_ids or [],
                    data_start_time=report.data_start_time,
                    data_end_time=report.data_end_time,
                )
            except BaseException:
                store.delete(mark)
                raise
            # Once: the new report, if it is stuck too, is cancelled but not requested a third time.
            store.set(f"{REQUEUED_PREFIX}{seller_id}:{new_id}", 1, ex=REQUEUED_TTL_SECONDS)
            store.hincrby(f"{KEY_PREFIX}{report.report_type}", "requeued", 1)
            found.requested_again[report.report_id] = new_id
            log.info("stuck report %s requested again as %s", report.report_id, new_id)
        client.cancel_report(report.report_id)
        found.cancelled.append(report.report_id)
    return found
