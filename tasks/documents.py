"""Task: retrieve one report document into the storage (queue ``documents``).

Thin over :func:`spreports.documents.retrieve_document`: a stored manifest makes it a no-op, a Redis
claim keeps two workers off the same document, transient errors become retries with backoff (what a
429 asks for, else exponential), permanent ones fail the task with the error's message. The result
is a small summary, never the pre-signed URL.
"""

from __future__ import annotations

import functools
import logging
import os
import random
from typing import Any, Literal

import requests
from celery import Task, shared_task
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spreports import names
from spreports.documents import DocumentClaim, DocumentRequest, RetrievalOptions, RetrievalResult, retrieve_document
from spreports.errors import InvalidRequest, TransientError
from spreports.settings import Settings
from spreports.storage import Storage, open_storage
from tasks.retrying import retry_later
from tasks.runtime import client_for, current_settings, redis_client
from workers.app import MAX_RETRY_COUNTDOWN

log = logging.getLogger(__name__)

# A task that finds the document claimed waits about this long before looking again (the holder is
# usually done well within it); it may wait many times, as long as the holder keeps downloading.
CLAIM_RETRY_SECONDS = 15.0
MAX_CLAIM_RETRIES = 200


class RetrieveDocumentArgs(BaseModel):
    """Arguments of :data:`names.RETRIEVE_REPORT_DOCUMENT` (ids only, never a URL)."""

    model_config = ConfigDict(extra="forbid")

    seller_id: str = Field(min_length=1, max_length=200)
    report_document_id: str = Field(min_length=1, max_length=500)
    report_id: str | None = Field(default=None, max_length=200)
    report_type: str | None = Field(default=None, max_length=200)
    processing_status: Literal["DONE", "FATAL", "CANCELLED"] = "DONE"
    notification_id: str | None = Field(default=None, max_length=200)


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
    try:
        args = RetrieveDocumentArgs.model_validate(kwargs)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidRequest(f"bad task arguments: {'.'.join(map(str, error['loc']))}: {error['msg']}") from None
    settings = current_settings()
    storage = storage_for(settings)
    existing = storage.find(args.seller_id, args.report_document_id)
    if existing is not None:
        return RetrievalResult(manifest=existing, already_stored=True).summary()
    claim = DocumentClaim(
        redis_client(),
        args.seller_id,
        args.report_document_id,
        owner=self.request.id or "local",
        ttl=settings.documents.claim_ttl_seconds,
    )
    if not claim.acquire():
        countdown = min(max(5.0, min(claim.remaining(), CLAIM_RETRY_SECONDS)), MAX_RETRY_COUNTDOWN)
        log.info(
            "document %s of seller %s is being retrieved by another task; looking again in %.0f s",
            args.report_document_id, args.seller_id, countdown,
        )  # fmt: skip
        raise self.retry(countdown=countdown + random.uniform(0, 2), max_retries=MAX_CLAIM_RETRIES)
    try:
        result = _retrieve(args, settings, storage)
    except TransientError as exc:
        retry_later(self, exc)
    finally:
        claim.release()
    summary = result.summary()
    log.info("stored document %s of seller %s at %s", args.report_document_id, args.seller_id, summary["location"])
    return summary


def _retrieve(args: RetrieveDocumentArgs, settings: Settings, storage: Storage) -> RetrievalResult:
    client = client_for(args.seller_id)
    fields = args.model_dump()
    if args.report_id:
        # The report's metadata goes into the manifest (and names the report type when not given).
        report = client.get_report(args.report_id)
        fields["report"] = report.model_dump(mode="json", by_alias=True)
        fields["report_type"] = args.report_type or report.report_type
    request = DocumentRequest(**fields)

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
