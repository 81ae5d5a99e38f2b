"""Task: retrieve one report document into the storage (queue ``documents``).

Thin over the retrieval service (:mod:`spreports.documents.retrieval`): a stored manifest makes it a
no-op, a Redis claim (unique to this run, renewed while the download runs) keeps two workers off the
same document. The task maps what the service raises to Celery's retries: transient errors (including
S3 or Redis failing while checking the storage or taking the claim) become retries with backoff (what a
429 asks for, else exponential), permanent ones (and transient ones past the budget) fail the task with
the error's message and go into the failure ledger (:mod:`spreports.reports.failure_ledger`). The result
is a small summary, never the pre-signed URL.

Waiting for another run's claim, or for the fleet's quota of getReportDocument, is a wait, not a
failure: it never uses up the transient-retry budget (:mod:`spreports.tasks.retrying`). A document taken
by a task is listed in flight (:mod:`spreports.documents.inflight`) until it is stored or in the failure
ledger, waits included (with the moment its task is due back), so that :func:`requeue_orphaned_documents`
queues it again soon after its worker dies or the broker loses its message.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NoReturn

from celery import Task, current_app, shared_task
from celery.exceptions import Reject, Retry

from spreports import names
from spreports.documents.inflight import DUE_MARGIN_SECONDS, InFlight
from spreports.documents.retrieval import ClaimHeld, Counters, DocumentRetrieval, FatalUnrecorded
from spreports.errors import QuotaWait, ServiceUnavailable, SpreportsError, TransientError
from spreports.metrics import WorkerMetrics
from spreports.spapi.ratelimit import prepaid
from spreports.task_arguments import ConvertRequest, DocumentRequest
from spreports.tasks import signatures
from spreports.tasks.context import context
from spreports.tasks.data import queue_conversion
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
# (``throws``): each is told in one line by the service's ``fail``, so Celery logs no traceback for them;
# anything else is a bug and keeps its traceback. Its result is kept only when the sender asks for it
# (``keep_result`` of its signature: the producers, the follower and the command line, which read it).
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
    service = retrieval_service()
    try:
        with prepaid(reserved_bucket(self)):
            try:
                retrieved = service.run(args, run_id=self.request.id or "local", progress=_progress_of(self))
            except ClaimHeld as held:
                _wait_for_claim(self, args, held.remaining)
    except Retry as wait:  # a wait for another run's claim, scheduled
        service.away(args, _countdown(wait))
        raise
    except Reject as rejected:  # the wait for another run's claim could not be queued
        service.fail(args, _unqueued(rejected))
        raise
    except FatalUnrecorded as late:
        # Stored, its counter and cooldown not yet: the retry finds the document stored and writes them.
        retry_later(self, late.error)
    except TransientError as exc:
        _retry_transient(self, service, args, exc)
    except Exception as exc:
        service.counters.count("document_failures", type(exc).__name__)
        service.fail(args, exc)
        raise
    if not retrieved.already_stored and args.processing_status == "DONE":
        # Its typed rows, on the data queue: an error document (FATAL) has none.
        queue_conversion(ConvertRequest(seller_id=args.seller_id, report_document_id=args.report_document_id))
    return retrieved.summary()


def _retry_transient(task: Task, service: DocumentRetrieval, args: DocumentRequest, exc: TransientError) -> NoReturn:  # type: ignore[type-arg]
    """Come back later (listed as away until then); past the budget, or unqueued, the document fails for good."""
    _count_transient(service.counters, exc)
    try:
        retry_later(task, exc)
    except Retry as wait:
        service.away(args, _countdown(wait))
        if not isinstance(exc, QuotaWait):
            service.counters.count("document_retries")
        raise
    except Reject:
        # Celery could not queue the retry (the broker is unreachable) and drops the message: the
        # condition may pass, so the ledger gets the error itself, which the sweep re-drives.
        service.fail(args, exc)
        raise
    except Exception as final:  # the budget is spent: recorded, then the task fails
        service.fail(args, final)
        raise


def retrieval_service() -> DocumentRetrieval:
    """The retrieval service of this worker process (on its context's connections)."""
    ctx = context()
    return DocumentRetrieval(ctx, counters=WorkerMetrics(ctx.redis))


def _progress_of(task: Task) -> Callable[[DocumentRequest], DownloadProgress]:  # type: ignore[type-arg]
    """The download's progress as the task's state (for the request as the service completed it)."""

    def progress(request: DocumentRequest) -> DownloadProgress:
        ctx = context()
        docs = ctx.settings.documents
        return DownloadProgress(task, request, every_seconds=docs.progress_seconds, every_bytes=docs.progress_bytes,
                                metrics=WorkerMetrics(ctx.redis))  # fmt: skip

    return progress


def _countdown(wait: Retry) -> float:
    """How long the task is away: its retry's countdown (from the moment it is due back)."""
    when = wait.when
    if isinstance(when, datetime):
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() - time.time()
    return float(when or 0.0)


def _unqueued(rejected: Reject) -> ServiceUnavailable:
    """A retry Celery could not queue (it rejects the message, which the broker drops), as an error that
    may pass: the ledger keeps it for the sweep. Only the cause's type: its text may name the broker."""
    cause = getattr(rejected, "reason", None)  # set by Celery, not in its type stubs
    return ServiceUnavailable(f"the broker did not take this task's retry ({type(cause).__name__})")


def _count_transient(counters: Counters, exc: TransientError) -> None:
    # A quota wait is a wait, not a failure (it has its own counter).
    if isinstance(exc, QuotaWait):
        counters.count("rate_limit_waits")
    else:
        counters.count("document_failures", type(exc).__name__)


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
        signatures.retrieval(current_app, request).apply_async()
        log.warning(
            "document %s of seller %s: its task was not seen %s; queued again",
            request.report_document_id, request.seller_id,
            "since its claim lapsed" if entry.due is None else f"for {grace:.0f} s after it was due back",
        )  # fmt: skip
        requeued += 1
    return requeued


def _wait_for_claim(task: Task, args: DocumentRequest, remaining: float) -> NoReturn:  # type: ignore[type-arg]
    # Look again when the claim would lapse (its holder died), or sooner (its holder finishes).
    countdown = max(MIN_CLAIM_RETRY_SECONDS, min(remaining, CLAIM_RETRY_SECONDS))
    fleet_metrics().count("document_claim_waits")
    log.info(
        "document %s of seller %s is being retrieved by another task; looking again in %.0f s",
        args.report_document_id, args.seller_id, countdown,
    )  # fmt: skip
    wait_then_retry(task, countdown + random.uniform(0, countdown / 4))
