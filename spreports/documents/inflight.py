"""Documents being retrieved right now, so that a dead worker's document is queued again within a minute.

A run that holds a document's claim lists the document here (one Redis hash, field ``<seller>:<document>``,
the retrieval's arguments as value) and takes it off when it ends. A worker killed mid-download
(SIGKILL, OOM, a host gone) leaves its entry behind, and its claim lapses within the claim's TTL since
nobody renews it. :func:`orphans` finds such entries; the periodic requeue task queues their retrieval
again, without waiting for the broker's visibility timeout to hand back the dead worker's message
(which, when it comes, finds the document stored and does nothing).
"""

from __future__ import annotations

import redis
from pydantic import ValidationError

from spreports.contracts import DocumentRequest
from spreports.documents.claim import CLAIM_PREFIX

INFLIGHT_KEY = "spreports:inflight"


class InFlight:
    """The registry of documents whose retrieval holds a claim."""

    def __init__(self, client: redis.Redis, key: str = INFLIGHT_KEY) -> None:
        self._redis = client
        self._key = key

    def add(self, request: DocumentRequest) -> None:
        """List ``request``'s document as being retrieved (call while holding its claim)."""
        self._redis.hset(self._key, _field(request), request.model_dump_json())

    def remove(self, request: DocumentRequest) -> None:
        """Take the document off the list (its run ended, whatever the outcome)."""
        self._redis.hdel(self._key, _field(request))

    def orphans(self) -> list[DocumentRequest]:
        """Listed documents whose claim has lapsed: their run died without ending."""
        entries = self._redis.hgetall(self._key)
        if not entries:
            return []
        fields = list(entries)
        pipe = self._redis.pipeline(transaction=False)
        for field in fields:
            pipe.exists(f"{CLAIM_PREFIX}:{field.decode() if isinstance(field, bytes) else field}")
        claimed = pipe.execute()
        found = []
        for field, held in zip(fields, claimed, strict=True):
            if held:
                continue
            try:
                found.append(DocumentRequest.model_validate_json(entries[field]))
            except ValidationError:
                self._redis.hdel(self._key, field)
        return found


def _field(request: DocumentRequest) -> str:
    # The same "<seller>:<document>" as the claim's key, so the claim of an entry is found by name.
    return f"{request.seller_id}:{request.report_document_id}"
