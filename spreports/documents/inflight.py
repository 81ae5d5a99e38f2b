"""Documents taken by a task and not yet stored or failed for good, so that no broker loss strands one.

A task that takes a document lists it here (one Redis hash, field ``<seller>:<document>``, the retrieval's
arguments as value) and keeps it listed until the document is stored or recorded in the failure ledger:
while it runs (holding the document's claim) and while it is away on a countdown (a wait for a claim or
for the quota, a failure's retry), the entry then saying when the task is due back. Each transition is
one HSET or HDEL.

The broker may lose the task's message whatever the product does: a worker killed mid-download, a
message popped by a consumer and never recorded as delivered (Redis killed in between), a delayed
message left unacknowledged by a worker whose connection broke (back only after the visibility timeout,
an hour), a purged queue. :meth:`InFlight.orphans` finds the entries whose task has not been seen: no
claim held and, for a task away on a countdown, its due moment more than a grace (the claim TTL plus a
margin) ago. The periodic requeue task queues their retrieval again; the claim and the stored manifest
absorb a duplicate, and the late original finds the document stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from pydantic import ValidationError

from spreports import keys
from spreports.documents.claim import CLAIM_PREFIX
from spreports.redis_errors import redis_errors
from spreports.task_arguments import DocumentRequest

INFLIGHT_KEY = keys.IN_FLIGHT.prefix
#: When the requeue task last ran (epoch seconds): beat's heartbeat, read by ``spreports check``.
REQUEUE_HEARTBEAT_KEY = keys.REQUEUE_HEARTBEAT.prefix
#: A task comes back this long after its due moment at the latest, unless it is lost (worker clocks
#: differ a little, a busy worker starts a due task a little late), beyond the claim TTL.
DUE_MARGIN_SECONDS = 15.0
#: A re-driven document not seen again is re-driven once more after a grace, then after 3, 7, ... graces,
#: at most this long apart: a long backlog in front of the re-driven message does not pile up copies.
MAX_REDRIVE_SECONDS = 3600.0

# Write only if the entry is still the one read: a task that listed it anew meanwhile (it came back) wins.
_REPLACE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then return redis.call('HDEL', KEYS[1], ARGV[1]) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Entry:
    """One listed document: its arguments, when its task is due back (None: running, under its claim),
    how many times the requeue task re-drove it since a task last took it, and the raw value read."""

    request: DocumentRequest
    due: float | None
    redriven: int
    raw: bytes


class InFlight:
    """The registry of documents taken by a task and neither stored nor failed for good."""

    def __init__(self, client: redis.Redis, key: str = INFLIGHT_KEY, clock: Callable[[], float] = time.time) -> None:
        self._redis = client
        self._key = key
        self._clock = clock

    @redis_errors("listing a document in flight")
    def add(self, request: DocumentRequest) -> None:
        """List ``request``'s document as being retrieved (call while holding its claim)."""
        self._redis.hset(self._key, _field(request), _value(request, None, 0))

    @redis_errors("listing a document's wait in flight")
    def away(self, request: DocumentRequest, countdown: float) -> None:
        """List the document as waiting: its task comes back in ``countdown`` seconds."""
        self._redis.hset(self._key, _field(request), _value(request, self._clock() + max(countdown, 0.0), 0))

    @redis_errors("taking a document off the in-flight list")
    def remove(self, request: DocumentRequest) -> None:
        """Take the document off the list (stored, or recorded in the failure ledger)."""
        self._redis.hdel(self._key, _field(request))

    @redis_errors("reading the in-flight list")
    def orphans(self, grace: float) -> list[Entry]:
        """Listed documents whose task has not been seen: no claim held and, for a task away on a countdown,
        due more than ``grace`` seconds ago."""
        entries = self._redis.hgetall(self._key)
        if not entries:
            return []
        fields = list(entries)
        pipe = self._redis.pipeline(transaction=False)
        for field in fields:
            pipe.exists(f"{CLAIM_PREFIX}:{field.decode() if isinstance(field, bytes) else field}")
        claimed = pipe.execute()
        now = self._clock()
        found = []
        for field, held in zip(fields, claimed, strict=True):
            if held:
                continue
            entry = _parse(entries[field])
            if entry is None:
                self._redis.hdel(self._key, field)
            elif entry.due is None or now > entry.due + grace:
                found.append(entry)
        return found

    def redriven(self, entry: Entry, grace: float) -> bool:
        """Note that ``entry`` was queued again (it is due at once, and again later if that one is lost too);
        False when a task listed the document anew meanwhile (then nothing needs queueing)."""
        count = entry.redriven + 1
        # The exponent capped: the hour's ceiling is reached long before, and a float power would overflow.
        due = self._clock() + min(grace * (2 ** min(count - 1, 30) - 1), MAX_REDRIVE_SECONDS)
        return self._replace(entry, _value(entry.request, due, count))

    def drop(self, entry: Entry) -> bool:
        """Take ``entry`` off the list (its document is stored), unless a task listed it anew meanwhile."""
        return self._replace(entry, "")

    @redis_errors("recording the requeue task's pass")
    def record_pass(self) -> None:
        """Note that the requeue task ran now (beat's heartbeat)."""
        self._redis.set(REQUEUE_HEARTBEAT_KEY, repr(self._clock()))

    @redis_errors("reading the requeue task's last pass")
    def last_pass(self) -> float | None:
        """When the requeue task last ran (epoch seconds), or None if never (or unreadable)."""
        value = self._redis.get(REQUEUE_HEARTBEAT_KEY)
        try:
            return None if value is None else float(value)
        except ValueError:
            return None

    @redis_errors("updating the in-flight list")
    def _replace(self, entry: Entry, value: str) -> bool:
        return bool(self._redis.eval(_REPLACE, 1, self._key, _field(entry.request), entry.raw, value))


def _field(request: DocumentRequest) -> str:
    # The same "<seller>:<document>" as the claim's key, so the claim of an entry is found by name.
    return f"{request.seller_id}:{request.report_document_id}"


def _value(request: DocumentRequest, due: float | None, redriven: int) -> str:
    return json.dumps({"request": request.task_kwargs(), "due": due, "redriven": redriven}, separators=(",", ":"))


def _parse(raw: bytes | str) -> Entry | None:
    data = raw if isinstance(raw, bytes) else raw.encode()
    try:
        value = json.loads(data)
        if isinstance(value, dict) and "request" in value:
            due, redriven = value.get("due"), value.get("redriven", 0)
            return Entry(DocumentRequest.model_validate(value["request"]),
                         None if due is None else float(due), int(redriven), data)  # fmt: skip
        # An entry of an earlier version: the arguments alone, listed while running.
        return Entry(DocumentRequest.model_validate(value), None, 0, data)
    except (ValueError, TypeError, ValidationError):
        return None
