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
from datetime import UTC, datetime
from typing import Any

from celery import Task, current_app, shared_task

from spreports import names
from spreports.errors import RequestPending, TransientError
from spreports.reports.backfill_runs import BackfillRun
from spreports.reports.obtain import PENDING_RETRY_SECONDS, follow_countdown
from spreports.spapi.ratelimit import prepaid
from spreports.task_arguments import BackfillRequest, DocumentRequest
from spreports.tasks import signatures
from spreports.tasks.context import context
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
    run = BackfillRun(ctx, args, str(self.request.id), enqueue=_enqueue, clock=_now)
    try:
        with prepaid(reserved_bucket(self)):
            summary = run.turn()
    except RequestPending as exc:
        countdown = (exc.retry_after or PENDING_RETRY_SECONDS) * random.uniform(0.8, 1.2)
        run.hold(countdown)
        wait_then_retry(self, countdown)
    except TransientError as exc:
        run.hold(MAX_RETRY_COUNTDOWN)  # retry_later's countdown is never longer
        retry_later(self, exc)
    log.info(
        "backfill %s (%s, seller %s): %d of %d window(s) stored, %d cancelled, %d fatal",
        summary["backfill_id"], summary["report_type"], summary["seller_id"], summary["stored"],
        summary["total"], summary["cancelled"], summary["fatal"],
    )  # fmt: skip
    if summary["finished"]:
        return summary
    options = ctx.settings.requests
    countdown = follow_countdown(waits(self), options.follow_first_seconds, options.follow_max_seconds)
    run.hold(countdown)
    wait_then_retry(self, countdown)


def _now() -> datetime:
    return datetime.now(UTC)


def _enqueue(request: DocumentRequest) -> None:
    signatures.retrieval(current_app, request).apply_async()
