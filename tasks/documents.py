"""Task: retrieve one report document into the storage (queue ``documents``).

Thin over :func:`spreports.documents.retrieve_document`: a stored manifest makes it a no-op, a Redis
claim (unique to this run, renewed while the download runs) keeps two workers off the same document,
transient errors (including S3 or Redis failing while checking the storage or taking the claim)
become retries with backoff (what a 429 asks for, else exponential), permanent ones fail the task
with the error's message. The result is a small summary, never the pre-signed URL.

Two budgets: waiting for another run's claim does not use up the transient-retry budget
(``tasks.retrying.MAX_RETRIES``); the waits are counted in a message header of their own.
"""

from __future__ import annotations

import functools
import logging
import os
import random
from typing import Any, NoReturn

import requests
from celery import Task, shared_task
from pydantic import ValidationError

from spreports import names
from spreports.documents import DocumentClaim, DocumentRequest, RetrievalOptions, RetrievalResult, retrieve_document
from spreports.documents.claim import claim_owner
from spreports.errors import InvalidRequest, TransientError
from spreports.settings import Settings
from spreports.storage import Storage, open_storage
from tasks.retrying import MAX_RETRIES, retry_countdown
from tasks.runtime import client_for, current_settings, redis_client

log = logging.getLogger(__name__)

# A task that finds the document claimed waits about this long before looking again (the holder is
# usually done well within it, or its claim lapses within the claim TTL if its worker died); it may
# wait many times, as long as the holder keeps renewing its claim (up to the hard time limit).
CLAIM_RETRY_SECONDS = 15.0
MIN_CLAIM_RETRY_SECONDS = 5.0
MAX_CLAIM_WAITS = 200
# The message header counting claim waits (task kwargs stay ids only).
CLAIM_WAITS_HEADER = "spreports_claim_waits"
# Task kwargs: the request's ids; the report's metadata is read by the task itself, never passed in.
TASK_FIELDS = frozenset(DocumentRequest.model_fields) - {"report"}


@functools.cache
def _download_session(pid: int) -> requests.Session:
    return requests.Session()


_storages: dict[tuple[int, int], tuple[Settings, Storage]] = {}


def download_session() -> requests.Session:
    """The worker process's session for document downloads (pooled connections to the document hosts).

    Keyed by process id: a prefork child never reuses a connection its parent opened.
    """
    return _download_session(os.getpid())


def storage_for(settings: Settings) -> Storage:
    """The worker process's storage object (one boto3 client per process for S3)."""
    # Settings are not hashable (they hold lists): cache by identity and process.
    key = (id(settings), os.getpid())
    cached = _storages.get(key)
    if cached is None or cached[0] is not settings:
        cached = _storages[key] = (settings, open_storage(settings))
    return cached[1]


# Routed to the documents queue by task_routes (workers.app).
@shared_task(name=names.RETRIEVE_REPORT_DOCUMENT, bind=True)
def retrieve_report_document(self: Task, /, **kwargs: Any) -> dict[str, Any]:  # type: ignore[type-arg]
    """Retrieve one document (see the module docstring); returns the stored document's summary."""
    args = task_request(kwargs)
    settings = current_settings()
    try:
        summary = _find_or_retrieve(self, args, settings)
    except TransientError as exc:
        _retry_transient(self, exc)
    log.info("stored document %s of seller %s at %s", args.report_document_id, args.seller_id, summary["location"])
    return summary


def task_request(kwargs: dict[str, Any]) -> DocumentRequest:
    """The task's kwargs as a request: ids only (:data:`TASK_FIELDS`), anything else is refused."""
    unknown = sorted(set(kwargs) - TASK_FIELDS)
    if unknown:
        raise InvalidRequest(f"bad task arguments: {unknown[0]}: not an argument of this task")
    try:
        return DocumentRequest.model_validate(kwargs)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidRequest(f"bad task arguments: {'.'.join(map(str, error['loc']))}: {error['msg']}") from None


def claim_waits(task: Task) -> int:  # type: ignore[type-arg]
    """How many of the task's retries were waits for another run's claim (from its message header)."""
    headers = task.request.headers or {}
    value = headers.get(CLAIM_WAITS_HEADER, getattr(task.request, CLAIM_WAITS_HEADER, 0))
    try:
        return max(int(value or 0), 0)
    except (TypeError, ValueError):
        return 0


def _find_or_retrieve(task: Task, args: DocumentRequest, settings: Settings) -> dict[str, Any]:  # type: ignore[type-arg]
    storage = storage_for(settings)
    existing = storage.find(args.seller_id, args.report_document_id)
    if existing is not None:
        return RetrievalResult(manifest=existing, already_stored=True).summary()
    claim = DocumentClaim(
        redis_client(),
        args.seller_id,
        args.report_document_id,
        owner=claim_owner(task.request.id or "local"),
        ttl=settings.documents.claim_ttl_seconds,
    )
    if not claim.acquire():
        _wait_for_claim(task, args, claim)
    with claim.kept():
        return _retrieve(args, settings, storage).summary()


def _wait_for_claim(task: Task, args: DocumentRequest, claim: DocumentClaim) -> NoReturn:  # type: ignore[type-arg]
    # Look again when the claim would lapse (its holder died), or sooner (its holder finishes).
    countdown = max(MIN_CLAIM_RETRY_SECONDS, min(claim.remaining(), CLAIM_RETRY_SECONDS))
    waits = claim_waits(task)
    log.info(
        "document %s of seller %s is being retrieved by another task; looking again in %.0f s",
        args.report_document_id, args.seller_id, countdown,
    )  # fmt: skip
    transient = task.request.retries - waits
    headers: dict[str, Any] = {**(task.request.headers or {}), CLAIM_WAITS_HEADER: waits + 1}
    raise task.retry(
        countdown=countdown + random.uniform(0, countdown / 4),
        max_retries=MAX_CLAIM_WAITS + transient,
        headers=headers,
    )


def _retry_transient(task: Task, exc: TransientError) -> NoReturn:  # type: ignore[type-arg]
    """Like :func:`tasks.retrying.retry_later`, but claim waits do not count against ``MAX_RETRIES``."""
    waits = claim_waits(task)
    countdown = retry_countdown(exc, task.request.retries - waits)
    raise task.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES + waits)


def _retrieve(args: DocumentRequest, settings: Settings, storage: Storage) -> RetrievalResult:
    client = client_for(args.seller_id)
    request = args
    if args.report_id:
        # The report's metadata goes into the manifest (and names the report type when not given).
        report = client.get_report(args.report_id)
        request = args.model_copy(
            update={
                "report": report.model_dump(mode="json", by_alias=True),
                "report_type": args.report_type or report.report_type,
            }
        )

    def locate() -> Any:
        return client.get_report_document(args.report_document_id, report_type=request.report_type)

    return retrieve_document(
        request,
        locate=locate,
        storage=storage,
        options=RetrievalOptions.from_settings(settings),
        session=download_session(),
        # The claim was just taken, but a task that lost a race with a finishing one re-checks here.
        skip_existing=True,
    )
