"""Tasks: request a report on demand and follow it to its document (over :mod:`spreports.reports.on_demand`)."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from celery import Task, current_app, shared_task
from celery.exceptions import Retry

from spreports import names
from spreports.errors import OutcomeUnknown, ReportNotFinished, RequestPending, TransientError
from spreports.reports.obtain import (
    PENDING_RETRY_SECONDS,
    follow_countdown,
    followed_for,
)
from spreports.reports.on_demand import AwaitReason, Ready, Replaced, follow_step
from spreports.reports.on_demand import request_report as request_on_demand
from spreports.reports.stuck import Replacements
from spreports.spapi.ratelimit import prepaid
from spreports.task_arguments import DocumentRequest, ReportFollow, ReportRequest
from spreports.tasks import signatures
from spreports.tasks.context import TaskContext, context
from spreports.tasks.retrying import reserved_bucket, retry_later, wait_then_retry, waits

log = logging.getLogger(__name__)

# A followed report that ends FATAL: its error document's retrieval is awaited this often, this long apart.
FATAL_REASON_POLLS = 6
FATAL_REASON_WAIT_SECONDS = 5.0


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
    replaces: str | None = None,
    restated: bool = False,
) -> dict[str, str]:
    """createReport for a seller, unless an identical report in flight (or fresh) can be reused.

    Returns the report's ids and how it was obtained (``reused``: ``new``, ``in-flight`` or ``done``);
    ``spreports.follow_report`` takes it from there to the stored document. With ``replaces`` (a stuck
    report the sweep has requested again), the new report is recorded as its replacement, for its
    followers, before the stuck one is cancelled. A ``restated`` request (the same window pulled again, as
    Amazon revises its figures) never reuses a DONE report, and its document will name the one of the
    request's last report as the version it supersedes.
    """
    request = ReportRequest.parse(
        report_type=report_type,
        seller_id=seller_id,
        marketplace_ids=marketplace_ids or [],
        data_start_time=data_start_time,
        data_end_time=data_end_time,
        report_options=report_options,
        replaces=replaces,
        restated=restated,
    )
    with _replacing(request):
        return _request(self, request)


def _request(task: Task, request: ReportRequest) -> dict[str, str]:  # type: ignore[type-arg]
    try:
        requested = request_on_demand(context(), request, owner=f"task:{task.request.id or 'local'}",
                                      prepaid_bucket=reserved_bucket(task))  # fmt: skip
    except RequestPending as exc:
        wait_then_retry(task, (exc.retry_after or PENDING_RETRY_SECONDS) * random.uniform(0.8, 1.2))
    except OutcomeUnknown:
        # The report may exist already: a retry could create it twice and spend createReport's small quota.
        raise
    except TransientError as exc:
        retry_later(task, exc)
    return requested.summary()


@contextmanager
def _replacing(request: ReportRequest) -> Iterator[None]:
    """A request standing in for a stuck report that fails for good lets the stuck report's followers go."""
    try:
        yield
    except Exception as exc:
        # Anything but a retry is final here: a transient error becomes a retry until its budget is spent.
        if request.replaces is not None and request.seller_id is not None and not isinstance(exc, Retry):
            Replacements(context().redis).abandon(request.seller_id, request.replaces)
        raise


@shared_task(name=names.FOLLOW_REPORT, bind=True)
def follow_report(
    self: Task,  # type: ignore[type-arg]
    requested: dict[str, Any] | None = None,
    *,
    seller_id: str | None = None,
    report_id: str | None = None,
    report_type: str | None = None,
) -> dict[str, Any]:
    """Follow a requested report (getReport on growing countdowns) and become its document's retrieval.

    Takes the ids as keywords, or as ``requested``: the result of ``spreports.request_report`` when
    chained after it. While the report runs, the task comes back later (never sleeping in a worker);
    when it is DONE, the task is replaced by ``spreports.retrieve_report_document`` under the same
    task id, so its result is the stored document's summary. A document the relay stores too is
    stored once (the retrieval's claim and stored manifest). CANCELLED and FATAL fail the task with
    a clear error.
    """
    given = {key: (requested or {}).get(key) for key in ("seller_id", "report_id", "report_type")}
    explicit = {"seller_id": seller_id, "report_id": report_id, "report_type": report_type}
    args = ReportFollow.parse(**{**given, **{k: v for k, v in explicit.items() if v is not None}})
    ctx = context()
    try:
        with prepaid(reserved_bucket(self)):
            report = ctx.client(args.seller_id).get_report(args.report_id)
    except TransientError as exc:
        retry_later(self, exc)
    step = follow_step(ctx, args, report, enqueue=_enqueue_document, reason_polls=FATAL_REASON_POLLS)
    if isinstance(step, Ready):
        raise self.replace(signatures.retrieval(self.app, step.document))
    if isinstance(step, Replaced):
        raise self.replace(signatures.follow(self.app, step.follow))
    if isinstance(step, AwaitReason):
        wait_then_retry(self, FATAL_REASON_WAIT_SECONDS)
    _come_back(self, ctx, args, step.status)


def _come_back(task: Task, ctx: TaskContext, args: ReportFollow, status: str) -> NoReturn:  # type: ignore[type-arg]
    options = ctx.settings.requests
    polls = waits(task)
    if followed_for(polls, options.follow_first_seconds, options.follow_max_seconds) >= options.follow_timeout_seconds:
        raise ReportNotFinished(
            f"report {args.report_id} of seller {args.seller_id} is still {status} after "
            f"{options.follow_timeout_seconds} s of following; `spreports reports list` shows it"
        )
    wait_then_retry(task, follow_countdown(polls, options.follow_first_seconds, options.follow_max_seconds))


def _enqueue_document(request: DocumentRequest) -> None:
    signatures.retrieval(current_app, request).apply_async()
