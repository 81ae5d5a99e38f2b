"""Task: backfill one report type over a date range, window by window (:mod:`spreports.backfill`).

One task drives a whole backfill. Each run moves every window along once (follow those at Amazon,
queue the retrieval of finished ones, request the next), then comes back later on a growing countdown
(never sleeping in a worker) until every window is stored, cancelled or fatal; its result is the
backfill's summary. The progress is in Redis: a run that dies, or a backfill started again with the
same arguments, goes on from there and never requests a window twice.
"""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task, current_app, shared_task

from spreports import names
from spreports.backfill import BackfillPlan, BackfillProgress, BackfillRound, run_round
from spreports.contracts import BackfillRequest, DocumentRequest
from spreports.errors import TransientError
from spreports.report_requests import (
    PENDING_RETRY_SECONDS,
    Finished,
    RequestPending,
    RequestRegistry,
    follow_countdown,
    resolve_target,
)
from spreports.spapi.ratelimit import prepaid
from spreports.tasks.context import TaskContext, context
from spreports.tasks.retrying import reserved_bucket, retry_later, wait_then_retry, waits

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
    try:
        with prepaid(reserved_bucket(self)):
            summary = run_round(progress, _round(ctx, args), now=datetime.now(UTC))
    except RequestPending as exc:
        wait_then_retry(self, (exc.retry_after or PENDING_RETRY_SECONDS) * random.uniform(0.8, 1.2))
    except TransientError as exc:
        retry_later(self, exc)
    log.info(
        "backfill %s (%s, seller %s): %d of %d window(s) stored, %d cancelled, %d fatal",
        summary["backfill_id"], summary["report_type"], summary["seller_id"], summary["stored"],
        summary["total"], summary["cancelled"], summary["fatal"],
    )  # fmt: skip
    if summary["finished"]:
        return summary
    options = ctx.settings.requests
    wait_then_retry(self, follow_countdown(waits(self), options.follow_first_seconds, options.follow_max_seconds))


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
