"""Restated data: a window pulled again later is a new version of the document, naming the one it supersedes.

Amazon revises some figures (Sales and Traffic) for days after it first reports them, so a ``[[requests]]``
entry with ``restate`` asks for the same window again. Two small Redis records connect the versions:

- per request (its fingerprint), the last report that answered it: the one a restatement supersedes;
- per restated report, the document it supersedes, read by whichever retrieval stores its document (the
  follower's or the relay's), so the new manifest names the earlier document either way.

Both live as long as Amazon keeps reports (90 days).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

import redis

from spreports import keys
from spreports.redis_errors import redis_call

__all__ = ["RETAINED", "Restatements"]

LAST_PREFIX = keys.LAST_REQUEST.prefix
SUPERSEDES_PREFIX = keys.SUPERSEDES.prefix
#: How long Amazon keeps a report: past that, an earlier version cannot be looked up anyway.
RETAINED = timedelta(days=90)
T = TypeVar("T")


class Restatements:
    """The fleet's memory of which report answered a request last, and what a restated report supersedes."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def remember(self, fingerprint: str, report_id: str) -> None:
        """``report_id`` is the latest answer to the request with ``fingerprint``."""
        _call(lambda: self._redis.set(LAST_PREFIX + fingerprint, report_id, ex=RETAINED))

    def last(self, fingerprint: str) -> str | None:
        """The report that answered the request with ``fingerprint`` last, if remembered."""
        return _text(_call(lambda: self._redis.get(LAST_PREFIX + fingerprint)))

    def mark(self, seller_id: str, report_id: str, superseded_document_id: str) -> None:
        """The document of ``report_id`` supersedes ``superseded_document_id``."""
        key = f"{SUPERSEDES_PREFIX}{seller_id}:{report_id}"
        _call(lambda: self._redis.set(key, superseded_document_id, ex=RETAINED))

    def superseded(self, seller_id: str, report_id: str) -> str | None:
        """The document that the document of ``report_id`` supersedes, if it is a restatement."""
        return _text(_call(lambda: self._redis.get(f"{SUPERSEDES_PREFIX}{seller_id}:{report_id}")))


def _call(action: Callable[[], T]) -> T:
    return redis_call("keeping the restatement records", action)


def _text(value: object) -> str | None:
    return value.decode() if isinstance(value, bytes) else None
