"""Tasks: request a report on demand and follow it to its document; sweep for finished reports whose notification was lost."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any, NoReturn

import redis
from celery import Task, current_app, shared_task
from celery.exceptions import Retry

from spreports import names
from spreports.contracts import DocumentRequest, ReportFollow, ReportRequest
from spreports.cooldowns import check_cooldown, start_cooldown
from spreports.documents.claim import CLAIM_PREFIX
from spreports.errors import InvalidRequest, NotFound, OutcomeUnknown, RedisUnavailable, SpreportsError, TransientError
from spreports.fatal import FatalLedger
from spreports.ledger import FailureLedger
from spreports.report_requests import (
    PENDING_RETRY_SECONDS,
    ReportFatal,
    ReportNotFinished,
    ReportSpec,
    RequestPending,
    RequestRegistry,
    follow_countdown,
    followed_for,
    obtain_report,
    report_outcome,
    resolve_target,
)
from spreports.restatements import Restatements
from spreports.schedules import load_schedules_file
from spreports.spapi.models import Report
from spreports.spapi.ratelimit import prepaid
from spreports.stuck import PENDING, Replacements, handle_stuck_reports
from spreports.sweep import FinishedReport, reports_to_retrieve
from spreports.tasks.context import TaskContext, context
from spreports.tasks.retrying import reserved_bucket, retry_later, wait_then_retry, waits

log = logging.getLogger(__name__)

SWEEP_MARK_PREFIX = "spreports:sweep:queued:"
# Longer than a sweep period, so a queued document is not queued again while it waits for a worker.
SWEEP_MARK_TTL_SECONDS = 3600
# A followed report that ends FATAL: its error document's retrieval is awaited this often, this long apart.
FATAL_POLLS_PREFIX = "spreports:fatal-polls:"
FATAL_REASON_POLLS = 6
FATAL_REASON_WAIT_SECONDS = 5.0
# The sweep looks for dead writers' leftovers in today's and yesterday's folders every time, and in every
# folder, whatever its day, once per this period (the first sweep of the fleet's day takes it): a part of
# a day whose sweeps never ran (the fleet was down) is removed too, and the whole tree is listed rarely.
STALE_PARTS_FULL_SCAN_KEY = "spreports:sweep:stale-parts-full-scan"
STALE_PARTS_FULL_SCAN_SECONDS = 24 * 3600


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
    ctx = context()
    seller, marketplaces = resolve_target(ctx.settings, request.seller_id, request.marketplace_ids)
    spec = ReportSpec.of(
        seller,
        request.report_type,
        marketplaces,
        request.report_options,
        request.data_start_time,
        request.data_end_time,
    )
    options = ctx.settings.requests
    restatements = Restatements(ctx.redis)
    previous: tuple[str, str] | None = None
    try:
        # A FATAL report of the same kind starts a cooldown: deferred (a wait), no quota spent.
        check_cooldown(ctx.redis, seller, request.report_type, request.report_options)
        if request.restated:
            # Looked up before the new report replaces it as the request's last, and before createReport,
            # so that a retry of this lookup never pays for a second new report.
            previous = _last_document(ctx, restatements, spec)
        with prepaid(reserved_bucket(task)):
            obtained = obtain_report(
                spec,
                ctx.client(seller),
                RequestRegistry(ctx.redis),
                owner=f"task:{task.request.id or 'local'}",
                # A restatement wants Amazon's figures as they are now: never the earlier DONE report.
                reuse_done=timedelta(0) if request.restated else timedelta(seconds=options.reuse_done_seconds),
                check_amazon=options.check_amazon,
                now=datetime.now(UTC),
                replaces=request.replaces,
            )
            if request.replaces is not None:
                _stand_in(ctx, seller, request.replaces, obtained.report_id)
        if previous is not None and previous[0] != obtained.report_id:
            restatements.mark(seller, obtained.report_id, previous[1])
        restatements.remember(spec.fingerprint, obtained.report_id)
    except RequestPending as exc:
        wait_then_retry(task, (exc.retry_after or PENDING_RETRY_SECONDS) * random.uniform(0.8, 1.2))
    except OutcomeUnknown:
        # The report may exist already: a retry could create it twice and spend createReport's small quota.
        raise
    except TransientError as exc:
        retry_later(task, exc)
    return {
        "seller_id": seller,
        "report_id": obtained.report_id,
        "report_type": spec.report_type,
        "reused": obtained.reused,
    }


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


def _stand_in(ctx: TaskContext, seller_id: str, stuck_id: str, replacement_id: str) -> None:
    """Record ``replacement_id`` for the followers of ``stuck_id``, then cancel the stuck one."""
    Replacements(ctx.redis).record(seller_id, stuck_id, replacement_id)
    try:
        ctx.client(seller_id).cancel_report(stuck_id)
    except InvalidRequest as exc:
        # It left IN_QUEUE meanwhile: it ends by itself, and its followers follow it to that end.
        log.info("stuck report %s was not cancelled: %s", stuck_id, exc)
        return
    log.info("stuck report %s of seller %s is cancelled; %s stands in for it", stuck_id, seller_id, replacement_id)


def _last_document(ctx: TaskContext, restatements: Restatements, spec: ReportSpec) -> tuple[str, str] | None:
    """The (reportId, reportDocumentId) of the request's last report, when it is DONE with a document."""
    report_id = restatements.last(spec.fingerprint)
    if report_id is None:
        return None
    try:
        report = ctx.client(spec.seller_id).get_report(report_id)
    except (NotFound, InvalidRequest):
        log.warning("report %s of seller %s is gone: its restatement supersedes nothing", report_id, spec.seller_id)
        return None
    if report.processing_status != "DONE" or not report.report_document_id:
        return None
    return report_id, report.report_document_id


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
    if report.processing_status == "CANCELLED":
        _follow_replacement(self, ctx, args)
    try:
        finished = report_outcome(report, args.seller_id)
    except ReportFatal as fatal:
        # With or without an error document: a request repeated right away would fail the same way.
        until = _cool_down(ctx, args.seller_id, report)
        if not report.report_document_id:
            log.warning(
                "report %s (%s) of seller %s is FATAL without an error document; requests of it wait until %s",
                report.report_id, report.report_type, args.seller_id, until.isoformat(timespec="seconds") if until else "?",
            )  # fmt: skip
        reason = _fatal_reason(self, ctx, args.seller_id, report) if report.report_document_id else None
        if reason is None:
            raise
        raise ReportFatal(f"{fatal}: {reason}") from None
    if finished is None:
        _come_back(self, ctx, args, report.processing_status)
    document = DocumentRequest(
        seller_id=args.seller_id,
        report_document_id=finished.report_document_id,
        report_id=finished.report_id,
        report_type=finished.report_type,
    )
    log.info(
        "report %s of seller %s is DONE; retrieving document %s",
        args.report_id,
        args.seller_id,
        document.report_document_id,
    )
    # The retrieval's result is the chain's (``request_report(...).get()``): kept, unlike the relay's.
    retrieval = self.app.signature(
        names.RETRIEVE_REPORT_DOCUMENT, kwargs=document.task_kwargs(), queue=names.DOCUMENTS_QUEUE, ignore_result=False
    )
    raise self.replace(retrieval)


def _follow_replacement(task: Task, ctx: TaskContext, args: ReportFollow) -> None:  # type: ignore[type-arg]
    """A stuck report cancelled for a replacement: follow the replacement (or wait for it to be requested)."""
    replacement = Replacements(ctx.redis).of(args.seller_id, args.report_id)
    if replacement is None:
        return  # cancelled for another reason: the caller learns it
    if replacement == PENDING:
        _come_back(task, ctx, args, "CANCELLED, its replacement being requested,")
    log.info("report %s of seller %s was stuck and cancelled; following its replacement %s",
             args.report_id, args.seller_id, replacement)  # fmt: skip
    follow = ReportFollow(seller_id=args.seller_id, report_id=replacement, report_type=args.report_type)
    raise task.replace(task.app.signature(names.FOLLOW_REPORT, kwargs=follow.task_kwargs(), queue=names.CONTROL_QUEUE))


def _cool_down(ctx: TaskContext, seller_id: str, report: Report) -> datetime | None:
    """Start the cooldown of a FATAL report's (seller, type), once per report; None when Redis failed."""
    try:
        return start_cooldown(ctx.redis, seller_id, report.report_type, report_id=report.report_id)
    except RedisUnavailable as exc:
        # The FATAL is still told to the caller; without its cooldown a new request may only fail again.
        log.warning(
            "the cooldown of FATAL report %s of seller %s was not started: %s", report.report_id, seller_id, exc
        )
        return None


def _fatal_reason(task: Task, ctx: TaskContext, seller_id: str, report: Report) -> str | None:  # type: ignore[type-arg]
    """The reason a FATAL report's error document gives, once its retrieval has read it.

    The first time, the error document is queued for retrieval (kept under ``_errors/``, its reason
    recorded, as the relay would do); the task then comes back a few times, briefly, for the reason.
    None when the document gives none, or does not arrive in time.
    """
    reason = FatalLedger(ctx.redis).reason_of(seller_id, report.report_id)
    if reason is not None:
        return reason
    polls_key = f"{FATAL_POLLS_PREFIX}{seller_id}:{report.report_id}"
    polls = ctx.redis.incr(polls_key)
    ctx.redis.expire(polls_key, SWEEP_MARK_TTL_SECONDS)
    if polls == 1:
        _enqueue_document(seller_id, report.report_document_id or "", report.report_id, report.report_type, "FATAL")
    if polls <= FATAL_REASON_POLLS:
        wait_then_retry(task, FATAL_REASON_WAIT_SECONDS)
    return None


def _come_back(task: Task, ctx: TaskContext, args: ReportFollow, status: str) -> NoReturn:  # type: ignore[type-arg]
    options = ctx.settings.requests
    polls = waits(task)
    if followed_for(polls, options.follow_first_seconds, options.follow_max_seconds) >= options.follow_timeout_seconds:
        raise ReportNotFinished(
            f"report {args.report_id} of seller {args.seller_id} is still {status} after "
            f"{options.follow_timeout_seconds} s of following; `spreports reports list` shows it"
        )
    wait_then_retry(task, follow_countdown(polls, options.follow_first_seconds, options.follow_max_seconds))


def _enqueue_document(seller_id: str, document_id: str, report_id: str, report_type: str, status: str) -> None:
    request = DocumentRequest.parse(
        seller_id=seller_id,
        report_document_id=document_id,
        report_id=report_id,
        report_type=report_type,
        processing_status=status,
    )
    current_app.send_task(names.RETRIEVE_REPORT_DOCUMENT, kwargs=request.task_kwargs(), queue=names.DOCUMENTS_QUEUE)


@shared_task(name=names.SWEEP_FINISHED_REPORTS)
def sweep_finished_reports() -> dict[str, int | str]:
    """Enqueue the retrieval of recent finished reports not stored yet.

    Returns per seller the count queued (or the failure), and ``recovered``: the total queued.
    """
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
        report_types.update(load_schedules_file(settings.schedules_file).report_types())
    if not report_types:
        log.warning("sweep skipped: set SPREPORTS_SQS__REPORT_TYPES or SPREPORTS_SCHEDULES_FILE to name report types")
        return results
    recovered = 0
    for seller_id in settings.sellers():
        try:
            results[seller_id] = found = _sweep_seller(ctx, seller_id, sorted(report_types))
            recovered += found
        except (SpreportsError, redis.RedisError) as exc:
            # One seller's failure (a revoked grant, throttling) must not stop the others; the next sweep retries.
            log.warning("sweep for seller %s failed: %s", seller_id, exc)
            results[seller_id] = f"failed: {type(exc).__name__}: {exc}"
        # The safety nets never skip one another: the stuck pass runs after the sweep, whatever the sweep met,
        # so that its getReports pages never take the sweep's turn of the quota, and nothing it meets stops it.
        stuck = _stuck_pass(ctx, seller_id, sorted(report_types))
        if stuck is not None:
            results[f"{seller_id}:stuck"] = stuck
    results["recovered"] = recovered
    # A number rather than silence: recoveries on every sweep mean notifications are not arriving.
    log.log(
        logging.WARNING if recovered else logging.INFO,
        "sweep recovered %d finished report(s) whose notification never came%s",
        recovered,
        "; check the relay and the notification subscriptions" if recovered else "",
    )
    return results


def _remove_stale_parts(ctx: TaskContext) -> int:
    """Remove what writers killed mid-write left in the storage (today's and yesterday's folders; once a
    day every folder)."""
    today = datetime.now(UTC).date()
    days: list[date] | None = [today, today - timedelta(days=1)]
    try:
        if ctx.redis.set(STALE_PARTS_FULL_SCAN_KEY, 1, nx=True, ex=STALE_PARTS_FULL_SCAN_SECONDS):
            days = None
    except (redis.RedisError, OSError) as exc:
        log.warning(
            "the clean-up of unfinished writes looks at recent days only: Redis failed (%s)", type(exc).__name__
        )
    try:
        removed = ctx.storage.remove_stale_parts(days)
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


def _stuck_pass(ctx: TaskContext, seller_id: str, report_types: list[str]) -> str | None:
    """Handle the seller's stuck reports; None, or the failure (logged) that cut the pass short."""
    try:
        # A stuck IN_QUEUE report is requested again by a request task of its own, which waits for the quota
        # and the cooldowns as any request does: the pass itself never waits for createReport.
        handle_stuck_reports(
            ctx.client(seller_id), ctx.redis, seller_id, report_types, now=datetime.now(UTC), requeue=_request_again
        )
    except Exception as exc:
        log.warning("the stuck-report pass for seller %s failed: %s", seller_id, exc)
        return f"failed: {type(exc).__name__}: {exc}"
    return None


def _request_again(spec: ReportSpec, replaces: str) -> None:
    request = ReportRequest(
        report_type=spec.report_type,
        seller_id=spec.seller_id,
        marketplace_ids=list(spec.marketplace_ids),
        data_start_time=spec.data_start_time,
        data_end_time=spec.data_end_time,
        report_options=spec.options,
        replaces=replaces,
    )
    current_app.send_task(names.REQUEST_REPORT, kwargs=request.task_kwargs(), queue=names.CONTROL_QUEUE)


def _sweep_seller(ctx: TaskContext, seller_id: str, report_types: list[str]) -> int:
    def is_handled(report: FinishedReport) -> bool:
        # Stored, or being retrieved right now (a run holds its claim): nothing for the safety net to do.
        document_id = report.report_document_id or ""
        if ctx.storage.find(seller_id, document_id) is not None:
            return True
        return bool(ctx.redis.exists(f"{CLAIM_PREFIX}:{seller_id}:{document_id}"))

    client, now = ctx.client(seller_id), datetime.now(UTC)
    enqueued = 0
    for report in reports_to_retrieve(client, report_types, is_handled, now=now):
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
