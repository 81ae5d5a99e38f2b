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

import codecs
import json
import re
from dataclasses import dataclass

import redis

from spreports import keys
from spreports.redis_errors import redis_errors

__all__ = ["CAPTURE_BYTES", "MAX_REASON", "UNREADABLE", "FatalLedger", "FatalStats", "error_reason"]

KEY_PREFIX = keys.FATAL_COUNTS.prefix
REPORT_PREFIX = keys.FATAL_REASON.prefix
#: How much of an error document is read for its reason (they are a few hundred bytes).
CAPTURE_BYTES = 64 * 1024
MAX_REASON = 500
REPORT_REASON_TTL_SECONDS = 30 * 24 * 3600
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
#: The reason given for an error document that cannot be read (binary, or JSON nested too deeply).
UNREADABLE = "unreadable error document"
#: Deeper JSON is not parsed: Python's parser recurses once per level and a few KiB of brackets exhaust it.
MAX_JSON_DEPTH = 64
#: A document with more than this share of control or undecodable characters is binary, not a reason.
MAX_UNPRINTABLE_SHARE = 0.1
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffd]")
_JSON_TOKENS = re.compile(r'\\.|["\[\]{}]', re.DOTALL)
_DETAILS_KEY = re.compile(r'"[Ee]rrorDetails"')
_DETAILS_VALUE = re.compile(r'\s*:\s*("(?:[^"\\]|\\.)*")')
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_TOO_DEEP = object()


def error_reason(document: bytes) -> str | None:
    """The reason a FATAL report's error document gives (its ``errorDetails``), or None when it says nothing.

    Never raises: the document is Amazon's bytes of any shape (huge, deeply nested, binary, any
    charset), and its reason must not keep the document's manifest, counter and cooldown from being
    written. A document that cannot be read yields :data:`UNREADABLE` with what was wrong.
    """
    try:
        return _reason(document[:CAPTURE_BYTES])
    except Exception as exc:  # whatever the bytes do to a parser, the reason is best effort
        return f"{UNREADABLE} ({type(exc).__name__})"


def _reason(document: bytes) -> str | None:
    text = _decode(document).lstrip("\ufeff").strip()
    if not text:
        return None
    if _unprintable_share(text) > MAX_UNPRINTABLE_SHARE:
        return f"{UNREADABLE} (binary)"
    data = _json_or_none(text)
    if data is _TOO_DEEP:
        return _flat_details(text) or f"{UNREADABLE} (JSON nested too deeply)"
    if isinstance(data, dict):
        details = data.get("errorDetails", data.get("ErrorDetails"))
        if details is None:
            return None
        text = details if isinstance(details, str) else json.dumps(details, ensure_ascii=False)
    return _clean(text) or None


def _decode(document: bytes) -> str:
    """The document as text: by its BOM, else UTF-8, else (some other charset) Cp1252, Amazon's usual other one."""
    for bom, codec in _BOMS:
        if document.startswith(bom):
            return document[len(bom) :].decode(codec, errors="replace")
    if _mostly_nul(document[0::2]) or _mostly_nul(document[1::2]):
        codec = "utf-16-be" if _mostly_nul(document[0::2]) else "utf-16-le"
        return document[: len(document) // 2 * 2].decode(codec, errors="replace")
    # A capture cut inside a character is no reason to call the document something else.
    text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(document, final=False)
    return document.decode("cp1252", errors="replace") if "\ufffd" in text else text


def _mostly_nul(sample: bytes) -> bool:
    return len(sample) >= 2 and sample.count(0) > len(sample) * 0.9


def _unprintable_share(text: str) -> float:
    return len(_UNPRINTABLE.findall(text)) / len(text)


def _json_or_none(text: str) -> object:
    """The parsed JSON, None when the text is not JSON, or ``_TOO_DEEP`` (the parser recurses per level)."""
    if not text.startswith(("{", "[")):
        return None
    depth, in_string = 0, False
    for token in _JSON_TOKENS.findall(text):  # one pass, escapes taken as pairs: linear on any input
        if token == '"':
            in_string = not in_string
        elif not in_string and token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return _TOO_DEEP
        elif not in_string and token in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except ValueError:
        return None


def _flat_details(text: str) -> str | None:
    """The first ``errorDetails`` string of a document too deep to parse, if it has one."""
    key = _DETAILS_KEY.search(text)
    found = _DETAILS_VALUE.match(text, key.end()) if key is not None else None
    try:
        return _clean(json.loads(found.group(1))) or None if found is not None else None
    except ValueError:  # an escape JSON does not know
        return None


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

    @redis_errors("counting a FATAL report")
    def record(self, seller_id: str, report_id: str | None, report_type: str | None, reason: str | None) -> None:
        """Count one FATAL report of ``report_type`` and keep its reason (for the request path)."""
        kind = report_type or "UNKNOWN"
        # One transaction: the report's entry (what ``recorded`` reads) is never there without the count.
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(f"{KEY_PREFIX}{kind}", "count", 1)
            pipe.hset(f"{KEY_PREFIX}{kind}", "last_reason", reason or "")
            pipe.hset(f"{KEY_PREFIX}{kind}", "last_report", report_id or "")
            pipe.hset(f"{KEY_PREFIX}{kind}", "last_seller", seller_id)
            if report_id:
                pipe.set(self._report_key(seller_id, report_id), reason or "", ex=REPORT_REASON_TTL_SECONDS)
            pipe.execute()

    @redis_errors("reading the FATAL ledger")
    def recorded(self, seller_id: str, report_id: str) -> bool:
        """Whether the FATAL report was counted (within the 30 days its reason is kept)."""
        return bool(self._redis.exists(self._report_key(seller_id, report_id)))

    @redis_errors("reading the FATAL ledger")
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

    @redis_errors("reading the FATAL ledger")
    def reason_of(self, seller_id: str, report_id: str) -> str | None:
        """The reason recorded for one FATAL report, or None (unknown, or its document said nothing)."""
        value: bytes | str | None = self._redis.get(self._report_key(seller_id, report_id))
        return (_text(value) or None) if value is not None else None

    @staticmethod
    def _report_key(seller_id: str, report_id: str) -> str:
        return f"{REPORT_PREFIX}{seller_id}:{report_id}"
