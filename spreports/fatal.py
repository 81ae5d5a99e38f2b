"""FATAL reports: the reason their error document gives, and where a person finds it.

A FATAL report may carry a document that "may explain why the report processing ended". Amazon writes
it as JSON with an ``errorDetails`` field (``{"errorDetails": "..."}``); anything else is read as text.
The document itself is stored under ``_errors/`` by the retrieval; this module reads its reason
(:func:`error_reason`) and records it (:class:`FatalLedger`):

- ``spreports:fatal:<reportType>``: a Redis hash per report type, ``count`` (FATAL reports seen) and
  ``last_reason`` / ``last_report`` / ``last_seller``, for dashboards and ``redis-cli HGETALL``;
- ``spreports:fatal:report:<sellerId>:<reportId>``: the reason of one report (kept 30 days), which
  the request path reads to fail ``request_report(...).get()`` with it.

Reasons are Amazon's words, cut to :data:`MAX_REASON` characters with control characters removed:
they go into logs, task results and the manifest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import redis

from spreports.errors import RedisUnavailable

__all__ = ["CAPTURE_BYTES", "MAX_REASON", "FatalLedger", "FatalStats", "error_reason"]

KEY_PREFIX = "spreports:fatal:"
REPORT_PREFIX = f"{KEY_PREFIX}report:"
#: How much of an error document is read for its reason (they are a few hundred bytes).
CAPTURE_BYTES = 64 * 1024
MAX_REASON = 500
REPORT_REASON_TTL_SECONDS = 30 * 24 * 3600
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def error_reason(document: bytes) -> str | None:
    """The reason a FATAL report's error document gives (its ``errorDetails``), or None when it says nothing."""
    text = document.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        details = data.get("errorDetails", data.get("ErrorDetails"))
        if details is None:
            return None
        text = details if isinstance(details, str) else json.dumps(details, ensure_ascii=False)
    return _clean(text) or None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value


def _clean(text: str) -> str:
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"


@dataclass(frozen=True)
class FatalStats:
    """What one report type's FATAL counter holds."""

    count: int
    last_reason: str | None
    last_report: str | None
    last_seller: str | None


class FatalLedger:
    """The FATAL counters per report type and the reason of each FATAL report, in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def record(self, seller_id: str, report_id: str | None, report_type: str | None, reason: str | None) -> None:
        """Count one FATAL report of ``report_type`` and keep its reason (for the request path)."""
        kind = report_type or "UNKNOWN"
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(f"{KEY_PREFIX}{kind}", "count", 1)
                pipe.hset(f"{KEY_PREFIX}{kind}", "last_reason", reason or "")
                pipe.hset(f"{KEY_PREFIX}{kind}", "last_report", report_id or "")
                pipe.hset(f"{KEY_PREFIX}{kind}", "last_seller", seller_id)
                if report_id:
                    pipe.set(self._report_key(seller_id, report_id), reason or "", ex=REPORT_REASON_TTL_SECONDS)
                pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise RedisUnavailable(f"FATAL ledger: Redis unavailable ({type(exc).__name__})") from None

    def stats(self, report_type: str) -> FatalStats:
        """The counter of one report type (zero when none was seen)."""
        raw: dict[bytes | str, bytes | str] = self._redis.hgetall(f"{KEY_PREFIX}{report_type}")
        data = {_text(k): _text(v) for k, v in raw.items()}
        return FatalStats(
            count=int(data.get("count", 0)),
            last_reason=data.get("last_reason") or None,
            last_report=data.get("last_report") or None,
            last_seller=data.get("last_seller") or None,
        )

    def reason_of(self, seller_id: str, report_id: str) -> str | None:
        """The reason recorded for one FATAL report, or None (unknown, or its document said nothing)."""
        value: bytes | str | None = self._redis.get(self._report_key(seller_id, report_id))
        return (_text(value) or None) if value is not None else None

    @staticmethod
    def _report_key(seller_id: str, report_id: str) -> str:
        return f"{REPORT_PREFIX}{seller_id}:{report_id}"
