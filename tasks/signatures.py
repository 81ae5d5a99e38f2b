"""The one place that builds the product's task messages: a Celery signature per task, from its argument model.

Every sender (the relay, the sweep, the requeue task, the backfill task, the schedule check, the
producers and the command line) sends work through these builders, so each task's arguments are
spelled once (their model in :mod:`spreports.task_arguments`) and no sender names a queue: the app's routing
(``task_routes`` and the default queue, :mod:`spreports.workers.app`) decides it, on either broker.

A builder takes the app whose broker and routing the message goes through; nothing is sent until the
caller applies the signature (``.apply_async()``, or a task's ``replace``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from spreports import names
from spreports.task_arguments import BackfillRequest, ConvertRequest, DocumentRequest, ReportFollow, ReportRequest

if TYPE_CHECKING:
    from celery import Celery, Signature


def retrieval(app: Celery, request: DocumentRequest, *, keep_result: bool = False) -> Signature:
    """``spreports.retrieve_report_document`` of one document; its result is kept only with ``keep_result``
    (for a caller that reads it), and a sender that keeps none subscribes to no result channel."""
    return app.signature(names.RETRIEVE_REPORT_DOCUMENT, kwargs=request.task_kwargs(), ignore_result=not keep_result)


def report_request(app: Celery, request: ReportRequest) -> Signature:
    """``spreports.request_report`` alone (its report is followed by whoever follows the one it stands in for)."""
    return app.signature(names.REQUEST_REPORT, kwargs=request.task_kwargs())


def follow(app: Celery, report: ReportFollow | None = None) -> Signature:
    """``spreports.follow_report`` of a report; without one, the follower chained after its request."""
    return app.signature(names.FOLLOW_REPORT, kwargs=None if report is None else report.task_kwargs())


def request_then_follow(app: Celery, request: ReportRequest, *, task_ids: str | None = None) -> Signature:
    """``spreports.request_report`` chained to ``spreports.follow_report``: the report requested, then its
    document stored (the chain's result is the document's summary, its parent's the report's ids).

    ``task_ids`` names both tasks (``request-<it>`` and ``follow-<it>``), so that one period's request can
    be found by its name.
    """
    first, then = report_request(app, request), follow(app)
    if task_ids is not None:
        first, then = first.set(task_id=f"request-{task_ids}"), then.set(task_id=f"follow-{task_ids}")
    chained: Signature = first | then
    return chained


def backfill(app: Celery, request: BackfillRequest) -> Signature:
    """``spreports.backfill_reports`` of one report type over a date range."""
    return app.signature(names.BACKFILL_REPORTS, kwargs=request.task_kwargs())


def schedule_sync(app: Celery, *, beat_start: bool, expires: float) -> Signature:
    """``spreports.sync_report_schedules`` as the check queues it (only if still due when it runs); dropped
    when no worker took it within ``expires`` s."""
    return app.signature(names.SYNC_REPORT_SCHEDULES, kwargs={"if_due": True, "beat_start": beat_start},
                         expires=expires)  # fmt: skip


def schedule_check(app: Celery, *, beat_start: bool, expires: float) -> Signature:
    """``spreports.check_report_schedules`` (``beat_start``: as beat starts); dropped after ``expires`` s."""
    return app.signature(names.CHECK_REPORT_SCHEDULES, kwargs={"beat_start": beat_start}, expires=expires)


def conversion(app: Celery, request: ConvertRequest) -> Signature:
    """``spreports.convert_document`` of one stored document; nobody reads its result, none is kept."""
    return app.signature(names.CONVERT_DOCUMENT, kwargs=request.task_kwargs(), ignore_result=True)
