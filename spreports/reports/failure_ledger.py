"""The ledger of documents that failed for good: no document is ever lost silently.

A retrieval that fails permanently (a refused document, a report Amazon does not know) or runs out of
retries (an outage longer than the backoff) leaves one entry here, keyed by (seller, document): the
request, the reason and when. ``spreports reports failed`` lists them, ``spreports reports
retry-failed`` queues them again, the periodic sweep re-drives those that failed on a condition that
may have passed, ``spreports check`` counts them. A later success removes the entry.
"""

from __future__ import annotations

from datetime import UTC, datetime

import redis
from pydantic import BaseModel, ValidationError

from spreports import keys
from spreports.errors import SpreportsError, TransientError
from spreports.redis_errors import redis_errors
from spreports.task_arguments import DocumentRequest

LEDGER_KEY = keys.FAILURE_LEDGER.prefix


class FailedDocument(BaseModel):
    """One entry: what was asked, why it failed, whether the cause may pass, and when."""

    request: DocumentRequest
    reason: str
    kind: str
    may_pass: bool
    failed_at: datetime


class FailureLedger:
    """Entries in one Redis hash (field ``<seller>:<document>``), so a document has at most one."""

    def __init__(self, client: redis.Redis, key: str = LEDGER_KEY) -> None:
        self._redis = client
        self._key = key

    @redis_errors("recording a failed document")
    def record(self, request: DocumentRequest, error: BaseException) -> FailedDocument:
        """Remember that ``request`` failed for good with ``error``.

        The reason is the message of the product's errors (which never hold a secret); of any other
        exception, only its type.
        """
        entry = FailedDocument(
            request=request,
            reason=str(error) if isinstance(error, SpreportsError) else type(error).__name__,
            kind=type(error).__name__,
            may_pass=isinstance(error, TransientError),
            failed_at=datetime.now(UTC),
        )
        self._redis.hset(self._key, _field(request.seller_id, request.report_document_id), entry.model_dump_json())
        return entry

    @redis_errors("clearing a failed document")
    def resolve(self, seller_id: str, report_document_id: str) -> None:
        """Forget the document's entry (it is stored now)."""
        self._redis.hdel(self._key, _field(seller_id, report_document_id))

    @redis_errors("reading the failure ledger")
    def entries(self, seller_id: str | None = None) -> list[FailedDocument]:
        """Every entry (of one seller), oldest failure first; unreadable entries are skipped."""
        found = []
        for raw in self._redis.hvals(self._key):
            try:
                entry = FailedDocument.model_validate_json(raw)
            except ValidationError:
                continue
            if seller_id is None or entry.request.seller_id == seller_id:
                found.append(entry)
        return sorted(found, key=lambda entry: entry.failed_at)

    @redis_errors("counting the failure ledger")
    def count(self) -> int:
        """How many documents failed for good and are not stored yet."""
        return int(self._redis.hlen(self._key))


def _field(seller_id: str, report_document_id: str) -> str:
    return f"{seller_id}:{report_document_id}"
