"""Tasks: request a report on demand, and sweep for finished reports whose notification was lost."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import redis
from celery import Task, current_app, shared_task

from spreports import names
from spreports.contracts import DocumentRequest, ReportRequest
from spreports.errors import InvalidRequest, OutcomeUnknown, SpreportsError, TransientError
from spreports.ledger import FailureLedger
from spreports.schedules import read_schedules_file
from spreports.spapi.ratelimit import prepaid
from spreports.sweep import FinishedReport, reports_to_retrieve
from spreports.tasks.context import TaskContext, context
from spreports.tasks.retrying import reserved_bucket, retry_later

log = logging.getLogger(__name__)

SWEEP_MARK_PREFIX = "spreports:sweep:queued:"
# Longer than a sweep period, so a queued document is not queued again while it waits for a worker.
SWEEP_MARK_TTL_SECONDS = 3600


@shared_task(name=names.REQUEST_REPORT, bind=True)
def request_report(
    self: Task,  # type: ignore[type-arg]
    *,
    report_type: str,
    seller_id: str | None = None,
    marketplace_ids: list[str] | None = None,
    data_start_time: str | None = None,
    data_end_time: str | None = None,
    report_options: dict[str, str] | None = None,
) -> dict[str, str]:
    """createReport for a seller; the document arrives later through the notification and the relay."""
    request = ReportRequest.parse(
        report_type=report_type,
        seller_id=seller_id,
        marketplace_ids=marketplace_ids or [],
        data_start_time=data_start_time,
        data_end_time=data_end_time,
        report_options=report_options,
    )
    ctx = context()
    seller = request.seller_id or ctx.settings.seller_id
    if not seller:
        raise InvalidRequest("no seller_id given and SPREPORTS_SELLER_ID is not set")
    configured = ctx.settings.sellers().get(seller)
    marketplaces = request.marketplace_ids or (configured.marketplace_ids if configured else [])
    if not marketplaces:
        raise InvalidRequest(f"no marketplace_ids given and none configured for seller {seller}")
    try:
        with prepaid(reserved_bucket(self)):
            report_id = ctx.client(seller).create_report(
                request.report_type,
                marketplaces,
                report_options=request.report_options,
                data_start_time=request.data_start_time,
                data_end_time=request.data_end_time,
            )
    except OutcomeUnknown:
        # The report may exist already: a retry could create it twice and spend createReport's small quota.
        raise
    except TransientError as exc:
        retry_later(self, exc)
    log.info("requested %s report %s for seller %s", request.report_type, report_id, seller)
    return {"seller_id": seller, "report_id": report_id, "report_type": request.report_type}


@shared_task(name=names.SWEEP_FINISHED_REPORTS)
def sweep_finished_reports() -> dict[str, int | str]:
    """Enqueue the retrieval of recent finished reports not stored yet; return per seller a count or the failure."""
    ctx = context()
    settings = ctx.settings
    results: dict[str, int | str] = {}
    redriven = _redrive_failures(ctx)
    if redriven:
        results["failure-ledger"] = redriven
    removed = _remove_stale_parts(ctx)
    if removed:
        results["stale-parts"] = removed
    report_types = set(settings.sqs.report_types)
    if settings.schedules_file is not None:
        report_types.update(schedule.report_type for schedule in read_schedules_file(settings.schedules_file))
    if not report_types:
        log.warning("sweep skipped: set SPREPORTS_SQS__REPORT_TYPES or SPREPORTS_SCHEDULES_FILE to name report types")
        return results
    for seller_id in settings.sellers():
        try:
            results[seller_id] = _sweep_seller(ctx, seller_id, sorted(report_types))
        except (SpreportsError, redis.RedisError) as exc:
            # One seller's failure (a revoked grant, throttling) must not stop the others; the next sweep retries.
            log.warning("sweep for seller %s failed: %s", seller_id, exc)
            results[seller_id] = f"failed: {type(exc).__name__}: {exc}"
    return results


def _remove_stale_parts(ctx: TaskContext) -> int:
    """Remove what writers killed mid-write left in the storage (today's and yesterday's folders)."""
    today = datetime.now(UTC).date()
    try:
        removed = ctx.storage.remove_stale_parts([today, today - timedelta(days=1)])
    except SpreportsError as exc:
        log.warning("the clean-up of unfinished writes failed: %s", exc)
        return 0
    if removed:
        log.info("removed %d unfinished write(s) of dead workers from the storage", removed)
    return removed


def _redrive_failures(ctx: TaskContext) -> int:
    """Queue again the documents that failed for good on a condition that may have passed (an outage)."""
    enqueued = 0
    for entry in FailureLedger(ctx.redis).entries():
        request = entry.request
        mark = f"{SWEEP_MARK_PREFIX}{request.seller_id}:{request.report_document_id}"
        if entry.may_pass and ctx.redis.set(mark, 1, nx=True, ex=SWEEP_MARK_TTL_SECONDS):
            current_app.send_task(
                names.RETRIEVE_REPORT_DOCUMENT, kwargs=request.task_kwargs(), queue=names.DOCUMENTS_QUEUE
            )
            enqueued += 1
    if enqueued:
        log.info("sweep queued %d document(s) of the failure ledger again", enqueued)
    return enqueued


def _sweep_seller(ctx: TaskContext, seller_id: str, report_types: list[str]) -> int:
    def is_stored(report: FinishedReport) -> bool:
        return ctx.storage.find(seller_id, report.report_document_id or "") is not None

    enqueued = 0
    for report in reports_to_retrieve(ctx.client(seller_id), report_types, is_stored, now=datetime.now(UTC)):
        # A document already queued by an earlier sweep (still waiting or downloading) is not queued again.
        mark = f"{SWEEP_MARK_PREFIX}{seller_id}:{report.report_document_id}"
        if not ctx.redis.set(mark, 1, nx=True, ex=SWEEP_MARK_TTL_SECONDS):
            continue
        request = DocumentRequest(
            seller_id=seller_id,
            report_document_id=report.report_document_id or "",
            report_id=report.report_id,
            report_type=report.report_type,
            processing_status=report.processing_status,
        )
        current_app.send_task(names.RETRIEVE_REPORT_DOCUMENT, kwargs=request.task_kwargs(), queue=names.DOCUMENTS_QUEUE)
        enqueued += 1
    return enqueued
