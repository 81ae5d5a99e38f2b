"""Task: retrieve one report document into the storage (queue ``documents``).

Thin over :func:`spreports.documents.retrieve_document`: a stored manifest makes it a no-op, a Redis
claim (unique to this run, renewed while the download runs) keeps two workers off the same document,
transient errors (including S3 or Redis failing while checking the storage or taking the claim)
become retries with backoff (what a 429 asks for, else exponential), permanent ones (and transient
ones past the budget) fail the task with the error's message and go into the failure ledger
(:mod:`spreports.ledger`). The result is a small summary, never the pre-signed URL.

Waiting for another run's claim, or for the fleet's quota of getReportDocument, is a wait, not a
failure: it never uses up the transient-retry budget (:mod:`spreports.tasks.retrying`). A document taken
by a task is listed in flight (:mod:`spreports.documents.inflight`) until it is stored or in the failure
ledger, waits included (with the moment its task is due back), so that :func:`requeue_orphaned_documents`
queues it again soon after its worker dies or the broker loses its message.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any, NoReturn

import redis
from celery import Task, current_app, shared_task
from celery.exceptions import Reject, Retry

from spreports import names
from spreports.contracts import DocumentRequest
from spreports.cooldowns import start_cooldown
from spreports.documents import DocumentClaim, RetrievalOptions, RetrievalResult, retrieve_document
from spreports.documents.claim import claim_owner
from spreports.documents.inflight import DUE_MARGIN_SECONDS, InFlight
from spreports.errors import QuotaWait, ServiceUnavailable, SpreportsError, TransientError
from spreports.fatal import FatalLedger
from spreports.ledger import FailureLedger
from spreports.metrics import WorkerMetrics
from spreports.restatements import Restatements
from spreports.spapi.ratelimit import prepaid
from spreports.tasks.context import TaskContext, context
from spreports.tasks.progress import DownloadProgress
from spreports.tasks.retrying import reserved_bucket, retry_later, wait_then_retry
from spreports.tasks.telemetry import fleet_metrics

log = logging.getLogger(__name__)

# A task that finds the document claimed waits about this long before looking again (the holder is
# usually done well within it, or its claim lapses within the claim TTL if its worker died); it may
# wait many times, as long as the holder keeps renewing its claim (up to the hard time limit).
CLAIM_RETRY_SECONDS = 15.0
MIN_CLAIM_RETRY_SECONDS = 5.0


# Routed to the documents queue by the app's task_routes. The product's errors are expected failures
# (``throws``): each is told in one line by _record_failure, so Celery logs no traceback for them;
# anything else is a bug and keeps its traceback. Its result is kept only when the sender asks for it
# (``ignore_result=False``: the producers and the command line, which read it); the relay's are not.
@shared_task(name=names.RETRIEVE_REPORT_DOCUMENT, bind=True, throws=(SpreportsError,), ignore_result=True)
def retrieve_report_document(
    self: Task,  # type: ignore[type-arg]
    *,
    seller_id: str,
    report_document_id: str,
    report_id: str | None = None,
    report_type: str | None = None,
    processing_status: str = "DONE",
    notification_id: str | None = None,
) -> dict[str, Any]:
    """Retrieve one document (see the module docstring); returns the stored document's summary."""
    args = DocumentRequest.parse(
        seller_id=seller_id,
        report_document_id=report_document_id,
        report_id=report_id,
        report_type=report_type,
        processing_status=processing_status,
        notification_id=notification_id,
    )
    ctx = context()
    metrics = fleet_metrics()
    try:
        with prepaid(reserved_bucket(self)):
            summary = _find_or_retrieve(self, args, ctx)
    except Retry as wait:  # a wait for another run's claim, scheduled
        _list_away(ctx, args, wait)
        raise
    except Reject as rejected:  # the wait for another run's claim could not be queued
        _record_failure(ctx, args, _unqueued(rejected))
        raise
    except TransientError as exc:
        _count_transient(metrics, exc)
        try:
            retry_later(self, exc)
        except Retry as wait:
            _list_away(ctx, args, wait)
            if not isinstance(exc, QuotaWait):
                metrics.count("document_retries")
            raise
        except Reject:
            # Celery could not queue the retry (the broker is unreachable) and drops the message: the
            # condition may pass, so the ledger gets the error itself, which the sweep re-drives.
            _record_failure(ctx, args, exc)
            raise
        except Exception as final:  # the budget is spent: recorded, then the task fails
            _record_failure(ctx, args, final)
            raise
    except Exception as exc:
        metrics.count("document_failures", type(exc).__name__)
        _record_failure(ctx, args, exc)
        raise
    if args.processing_status == "FATAL":
        try:
            summary = _record_fatal(ctx, args, summary)
        except TransientError as exc:
            # Stored, its counter and cooldown not yet: the retry finds the document stored and writes them.
            retry_later(self, exc)
    _count_stored(metrics, summary)
    log.info(
        "stored document %s of seller %s at %s (report %s, %s; %s bytes in, %s out, %s s; task %s)",
        args.report_document_id, args.seller_id, summary["location"], args.report_id or "?",
        summary.get("report_type") or args.report_type or "type unknown", summary["bytes_in"], summary["bytes_out"],
        summary["seconds"], self.request.id,
    )  # fmt: skip
    with contextlib.suppress(redis.RedisError, OSError):
        FailureLedger(ctx.redis).resolve(args.seller_id, args.report_document_id)
    return summary


def _list_away(ctx: TaskContext, args: DocumentRequest, wait: Retry) -> None:
    """Keep the document listed while its task is away on a countdown, with the moment it is due back: should
    the broker lose the delayed message, the requeue task queues the document again soon after."""
    when = wait.when
    if isinstance(when, datetime):
        countdown = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() - time.time()
    else:
        countdown = float(when or 0.0)
    try:
        InFlight(ctx.redis).away(args, countdown)
    except (redis.RedisError, OSError) as exc:
        # The retry is queued all the same: only a broker loss of it would go unnoticed (the sweep remains).
        log.warning(
            "document %s of seller %s: could not list its wait in flight (%s)",
            args.report_document_id, args.seller_id, type(exc).__name__,
        )  # fmt: skip


def _unqueued(rejected: Reject) -> ServiceUnavailable:
    """A retry Celery could not queue (it rejects the message, which the broker drops), as an error that
    may pass: the ledger keeps it for the sweep. Only the cause's type: its text may name the broker."""
    cause = getattr(rejected, "reason", None)  # set by Celery, not in its type stubs
    return ServiceUnavailable(f"the broker did not take this task's retry ({type(cause).__name__})")


def _count_transient(metrics: WorkerMetrics, exc: TransientError) -> None:
    # A quota wait is a wait, not a failure (it has its own counter).
    if isinstance(exc, QuotaWait):
        metrics.count("rate_limit_waits")
    else:
        metrics.count("document_failures", type(exc).__name__)


def _count_stored(metrics: WorkerMetrics, summary: dict[str, Any]) -> None:
    if summary.get("already_stored"):
        metrics.count("documents", "already_stored")
        return
    seconds = summary.get("seconds")
    metrics.count_stored(None if seconds is None else float(seconds))


# --- FATAL reports: the reason, the counter, the cooldown (issue 11) ------------------------------------


def _record_fatal(ctx: TaskContext, args: DocumentRequest, summary: dict[str, Any]) -> dict[str, Any]:
    """Carry a FATAL report's reason into the result, the log, its type's counter; start its cooldown."""
    manifest = ctx.storage.find(args.seller_id, args.report_document_id)
    reason = manifest.error_reason if manifest is not None else None
    summary = {**summary, "processing_status": "FATAL", "error_reason": reason}
    ledger = FatalLedger(ctx.redis)
    if summary.get("already_stored") and (not args.report_id or ledger.recorded(args.seller_id, args.report_id)):
        return summary  # counted and cooled down by the run that stored it
    report_type = args.report_type or (manifest.report_type if manifest is not None else None)
    # The cooldown first, the ledger last: its entry for the report tells a later run that both are written.
    until = start_cooldown(ctx.redis, args.seller_id, report_type, report_id=args.report_id) if report_type else None
    ledger.record(args.seller_id, args.report_id, report_type, reason)
    log.warning(
        "report %s (%s) of seller %s is FATAL: %s%s",
        args.report_id or "?", report_type or "type unknown", args.seller_id, reason or "(no reason given)",
        f"; requests of it wait until {until.isoformat()}" if until else "",
    )  # fmt: skip
    return summary


def _record_failure(ctx: TaskContext, args: DocumentRequest, error: BaseException) -> None:
    """Put a document that failed for good in the ledger, where a person and the sweep can re-drive it."""
    WorkerMetrics(ctx.redis).count("documents", "failed")
    try:
        entry = FailureLedger(ctx.redis).record(args, error)
    except (redis.RedisError, OSError) as exc:
        # Left in flight: the requeue task tries it again, so it is not lost while the ledger is unreachable.
        log.error(
            "document %s of seller %s failed for good (%s) and the failure ledger is unreachable (%s)",
            args.report_document_id, args.seller_id, type(error).__name__, type(exc).__name__,
        )  # fmt: skip
        return
    _unlist(InFlight(ctx.redis), args)  # in the ledger now: re-driven from there, not by the requeue task
    # One line, no traceback: what failed, whether it can pass, Amazon's words (with its request id), what next.
    log.error(
        "document %s of seller %s not stored (%s, %s): %s; in the failure ledger (`spreports reports failed`)",
        args.report_document_id, args.seller_id, type(error).__name__,
        "may pass: the sweep retries it" if entry.may_pass else "permanent: retrying will not help", entry.reason,
    )  # fmt: skip


def _find_or_retrieve(task: Task, args: DocumentRequest, ctx: TaskContext) -> dict[str, Any]:  # type: ignore[type-arg]
    existing = ctx.storage.find(args.seller_id, args.report_document_id)
    if existing is not None:
        return RetrievalResult(manifest=existing, already_stored=True).summary()
    claim = DocumentClaim(
        ctx.redis,
        args.seller_id,
        args.report_document_id,
        owner=claim_owner(task.request.id or "local"),
        ttl=ctx.settings.documents.claim_ttl_seconds,
    )
    if not claim.acquire():
        _wait_for_claim(task, args, claim)
    with claim.kept():
        inflight = InFlight(ctx.redis)
        try:
            inflight.add(args)
        except (redis.RedisError, OSError) as exc:
            raise ServiceUnavailable(f"Redis failed while listing the download ({type(exc).__name__})") from None
        try:
            summary = _retrieve(task, args, ctx).summary()
        except SystemExit:
            # The worker is stopping (its pool process was told to end; the download is abandoned and its
            # partial file removed). The broker hands the message back; should the worker be killed
            # before it does, the entry stays listed and, its claim released, is queued again.
            log.warning(
                "document %s of seller %s: the worker is stopping; handed back for another worker",
                args.report_document_id, args.seller_id,
            )  # fmt: skip
            raise
        # On an error the entry stays listed: the task's retry lists it as away (with its due moment), a
        # failure for good takes it off as it goes into the ledger.
        _unlist(inflight, args)
        return summary


def _unlist(inflight: InFlight, args: DocumentRequest) -> None:
    # Best effort: an entry left behind without a claim is found stored, or queued once more.
    with contextlib.suppress(redis.RedisError, OSError):
        inflight.remove(args)


@shared_task(name=names.REQUEUE_ORPHANED_DOCUMENTS)
def requeue_orphaned_documents() -> int:
    """Queue again the listed documents whose task has not been seen (its worker died, or the broker lost its
    message while it ran or waited on a countdown); return how many."""
    ctx = context()
    inflight = InFlight(ctx.redis)
    inflight.record_pass()
    # A task comes back by its due moment; one whose claim could still be alive, or a little late, is not lost.
    grace = ctx.settings.documents.claim_ttl_seconds + DUE_MARGIN_SECONDS
    requeued = 0
    for entry in inflight.orphans(grace):
        request = entry.request
        # Off the list only once it is stored; listed as queued again before it is, so that a failure in
        # between leaves it due for the next pass.
        if ctx.storage.find(request.seller_id, request.report_document_id) is not None:
            inflight.drop(entry)
            continue
        if not inflight.redriven(entry, grace):
            continue  # a task listed it anew meanwhile: it is not lost
        current_app.send_task(names.RETRIEVE_REPORT_DOCUMENT, kwargs=request.task_kwargs(), queue=names.DOCUMENTS_QUEUE)
        log.warning(
            "document %s of seller %s: its task was not seen %s; queued again",
            request.report_document_id, request.seller_id,
            "since its claim lapsed" if entry.due is None else f"for {grace:.0f} s after it was due back",
        )  # fmt: skip
        requeued += 1
    return requeued


def _wait_for_claim(task: Task, args: DocumentRequest, claim: DocumentClaim) -> NoReturn:  # type: ignore[type-arg]
    # Look again when the claim would lapse (its holder died), or sooner (its holder finishes).
    countdown = max(MIN_CLAIM_RETRY_SECONDS, min(claim.remaining(), CLAIM_RETRY_SECONDS))
    fleet_metrics().count("document_claim_waits")
    log.info(
        "document %s of seller %s is being retrieved by another task; looking again in %.0f s",
        args.report_document_id, args.seller_id, countdown,
    )  # fmt: skip
    wait_then_retry(task, countdown + random.uniform(0, countdown / 4))


def _retrieve(task: Task, args: DocumentRequest, ctx: TaskContext) -> RetrievalResult:  # type: ignore[type-arg]
    client = ctx.client(args.seller_id)
    request, report, supersedes = args, None, None
    if args.report_id:
        # The report's metadata goes into the manifest (and names the report type when not given).
        found = client.get_report(args.report_id)
        report = found.model_dump(mode="json", by_alias=True)
        request = args.model_copy(update={"report_type": args.report_type or found.report_type})
        # A restated report's document is a new version of an earlier one, whoever queued its retrieval.
        supersedes = Restatements(ctx.redis).superseded(args.seller_id, args.report_id)

    def locate() -> Any:
        return client.get_report_document(args.report_document_id, report_type=request.report_type)

    docs = ctx.settings.documents
    progress = DownloadProgress(task, request, every_seconds=docs.progress_seconds, every_bytes=docs.progress_bytes,
                                metrics=WorkerMetrics(ctx.redis))  # fmt: skip
    log.info(
        "retrieving document %s of seller %s (report %s, %s; task %s)",
        request.report_document_id, request.seller_id, request.report_id or "?",
        request.report_type or "type unknown", task.request.id,
    )  # fmt: skip
    started = time.monotonic()
    try:
        result = retrieve_document(
            request,
            locate=locate,
            report=report,
            storage=ctx.storage,
            options=RetrievalOptions.from_settings(ctx.settings),
            session=ctx.session,
            progress=progress,
            # The claim was just taken, but a task that lost a race with a finishing one re-checks here.
            skip_existing=True,
            supersedes=supersedes,
        )
    except BaseException as exc:
        progress.finish()
        log.info(
            "document %s of seller %s (report %s, %s; task %s): retrieval ended with %s after %.1f s",
            request.report_document_id, request.seller_id, request.report_id or "?",
            request.report_type or "type unknown", task.request.id, type(exc).__name__, time.monotonic() - started,
        )  # fmt: skip
        raise
    progress.finish(result.manifest.bytes_in, result.manifest.bytes_out)
    return result
