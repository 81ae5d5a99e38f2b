"""The safety net: find finished reports whose notification never arrived.

Amazon advises a backup for late or lost notifications. The sweep lists recent DONE and FATAL
reports (getReports) of the report types the product cares about and yields those with a document
that is not stored yet; the caller enqueues their retrieval (which is idempotent anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Protocol

# getReports accepts at most 10 report types per call.
MAX_TYPES_PER_CALL = 10
# Amazon's largest page (its default is 10): every further page costs a getReports token, one per 45 s.
PAGE_SIZE = 100
DEFAULT_LOOKBACK = timedelta(hours=24)


class FinishedReport(Protocol):
    """The fields of a report the sweep reads."""

    @property
    def report_id(self) -> str: ...
    @property
    def report_type(self) -> str: ...
    @property
    def processing_status(self) -> str: ...
    @property
    def report_document_id(self) -> str | None: ...


class ReportLister(Protocol):
    """The part of the SP-API client the sweep needs."""

    def get_reports(
        self,
        *,
        report_types: Sequence[str],
        processing_statuses: Sequence[str],
        created_since: datetime,
        page_size: int,
    ) -> Iterator[FinishedReport]: ...


def reports_to_retrieve(
    client: ReportLister,
    report_types: Sequence[str],
    is_handled: Callable[[FinishedReport], bool],
    *,
    now: datetime,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> Iterator[FinishedReport]:
    """Yield DONE/FATAL reports created within ``lookback`` whose document ``is_handled`` denies (not stored,
    not being retrieved)."""
    types = sorted(set(report_types))
    seen: set[str] = set()
    for start in range(0, len(types), MAX_TYPES_PER_CALL):
        reports = client.get_reports(
            report_types=types[start : start + MAX_TYPES_PER_CALL],
            processing_statuses=["DONE", "FATAL"],
            created_since=now - lookback,
            page_size=PAGE_SIZE,
        )
        for report in reports:
            document_id = report.report_document_id
            # The same document can back several reports; fetch it once.
            if document_id is None or document_id in seen or is_handled(report):
                continue
            seen.add(document_id)
            yield report
