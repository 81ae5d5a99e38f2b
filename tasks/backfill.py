"""Task: backfill one report type over a date range, window by window (:mod:`spreports.reports.backfill`).

One task drives a whole backfill. Each run moves every window along once (follow those at Amazon,
queue the retrieval of finished ones, request the next), then comes back later on a growing countdown
(never sleeping in a worker) until every window is stored, cancelled or fatal; its result is the
backfill's summary. The progress is in Redis: a run that dies, or a backfill started again with the
same arguments, goes on from there and never requests a window twice.

A run is the task's id. While one run drives a backfill, another run of it only follows (its result
is the same summary, naming the run it followed); a run late for its next round by more than
``SPREPORTS_REQUESTS__BACKFILL_TAKEOVER_SECONDS`` is taken over (:mod:`spreports.reports.backfill_runs`).
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task, current_app, shared_task

from spreports import names
from spreports.errors import RequestPending, TransientError
from spreports.redis_errors import FAILURES
from spreports.reports.backfill import BackfillPlan, BackfillProgress, BackfillRound
from spreports.reports.backfill_runs import RunLease, drive
from spreports.reports.obtain import PENDING_RETRY_SECONDS, Finished, RequestRegistry, follow_countdown, resolve_target
from spreports.spapi.ratelimit import prepaid
from spreports.task_arguments import BackfillRequest, DocumentRequest
from spreports.tasks.context import TaskContext, context
from spreports.tasks.retrying import MAX_RETRY_COUNTDOWN, reserved_bucket, retry_later, wait_then_retry, waits

log = logging.getLogger(__name__)


@shared_task(name=names.BACKFILL_REPORTS, bind=True)
def backfill_reports(
    self: Task,  # type: ignore[type-arg]
    *,
    report_type: str,
    data_start_time: str,
    data_end_time: str,
    seller_id: str | None = None,
    marketplace_ids: list[str] | None = None,
    report_options: dict[str, str] | None = None,
    parallel: int = 1,
) -> dict[str, Any]:
    """Request and retrieve ``[data_start_time, data_end_time)`` in windows; returns the backfill's summary."""
    args = BackfillRequest.parse(
        report_type=report_type,
        data_start_time=data_start_time,
        data_end_time=data_end_time,
        seller_id=seller_id,
        marketplace_ids=marketplace_ids or [],
        report_options=report_options,
        parallel=parallel,
    )
    ctx = context()
    progress = BackfillProgress(ctx.redis, plan_of(ctx, args))
    options = ctx.settings.requests
    run_id = str(self.request.id)
    lease = RunLease(ctx.redis, progress.plan.plan_id, grace=timedelta(seconds=options.backfill_takeover_seconds))
    try:
        with prepaid(reserved_bucket(self)):
            summary = drive(progress, lease, _round(ctx, args), run_id=run_id, clock=_now)
    except RequestPending as exc:
        countdown = (exc.retry_after or PENDING_RETRY_SECONDS) * random.uniform(0.8, 1.2)
        _hold(lease, run_id, countdown)
        wait_then_retry(self, countdown)
    except TransientError as exc:
        _hold(lease, run_id, MAX_RETRY_COUNTDOWN)  # retry_later's countdown is never longer
        retry_later(self, exc)
    log.info(
        "backfill %s (%s, seller %s): %d of %d window(s) stored, %d cancelled, %d fatal",
        summary["backfill_id"], summary["report_type"], summary["seller_id"], summary["stored"],
        summary["total"], summary["cancelled"], summary["fatal"],
    )  # fmt: skip
    if summary["finished"]:
        return summary
    countdown = follow_countdown(waits(self), options.follow_first_seconds, options.follow_max_seconds)
    _hold(lease, run_id, countdown)
    wait_then_retry(self, countdown)


def _now() -> datetime:
    return datetime.now(UTC)


def _hold(lease: RunLease, run_id: str, countdown: float) -> None:
    """Tell the followers when this run comes back (when it drives); a Redis outage only lets the lease lapse sooner."""
    try:
        lease.renew(run_id, now=_now(), hold=timedelta(seconds=countdown))
    except FAILURES as exc:
        log.warning("backfill run %s could not renew its lease: %s", run_id, exc)


def plan_of(ctx: TaskContext, args: BackfillRequest) -> BackfillPlan:
    """The plan of a backfill request (seller and marketplaces resolved from the settings)."""
    seller, marketplaces = resolve_target(ctx.settings, args.seller_id, args.marketplace_ids)
    return BackfillPlan.of(
        seller, args.report_type, marketplaces, args.data_start_time, args.data_end_time, args.report_options
    )


def _round(ctx: TaskContext, args: BackfillRequest) -> BackfillRound:
    seller, _ = resolve_target(ctx.settings, args.seller_id, args.marketplace_ids)

    def find(document_id: str) -> str | None:
        manifest = ctx.storage.find(seller, document_id)
        return None if manifest is None else manifest.location

    def enqueue(finished: Finished) -> None:
        request = DocumentRequest(
            seller_id=seller,
            report_document_id=finished.report_document_id,
            report_id=finished.report_id,
            report_type=finished.report_type,
        )
        current_app.send_task(names.RETRIEVE_REPORT_DOCUMENT, kwargs=request.task_kwargs(), queue=names.DOCUMENTS_QUEUE)

    options = ctx.settings.requests
    return BackfillRound(
        api=ctx.client(seller),
        registry=RequestRegistry(ctx.redis),
        find=find,
        enqueue=enqueue,
        reuse_done=timedelta(seconds=options.reuse_done_seconds),
        check_amazon=options.check_amazon,
        parallel=args.parallel,
    )
