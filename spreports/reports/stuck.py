"""Reports stuck IN_QUEUE or IN_PROGRESS far longer than their type takes: found, logged, counted, re-driven.

Amazon leaves some reports IN_QUEUE or IN_PROGRESS for hours or days. The sweep calls
:func:`handle_stuck_reports` per seller: every report of the given types older than its threshold
(:func:`threshold_for`) is logged and counted in the Redis hash ``spreports:stuck:<reportType>``
(``in_queue``, ``in_progress``, ``not_ours``, ``requeued``, ``cancelled``).

Only reports the product made (their spec remembered by
:meth:`~spreports.reports.obtain.RequestRegistry.made`) are acted on: a stuck IN_QUEUE one is requested
again once, with the same spec (options, marketplaces, data window), through ``requeue``: the caller
queues a regular request, which waits for the quota and the cooldowns as any request does, records the
new report as the old one's replacement (:class:`Replacements`) and then cancels the old one. A stuck
report that was requested again already, or is itself a replacement, is cancelled, not requested a
third time. Reports another program made are reported only, never cancelled; an IN_PROGRESS one cannot
be cancelled and is only reported.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import redis

from spreports import keys
from spreports.errors import InvalidRequest, TransientError
from spreports.redis_errors import FAILURES, redis_call, redis_errors
from spreports.reports.obtain import ReportSpec, RequestRegistry
from spreports.spapi.models import Report

__all__ = [
    "DEFAULT_THRESHOLD",
    "THRESHOLDS",
    "Replacements",
    "StuckReports",
    "handle_stuck_reports",
    "threshold_for",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

KEY_PREFIX = keys.STUCK_COUNTS.prefix
REQUEUED_PREFIX = keys.STUCK_REQUEUED.prefix
REPLACED_PREFIX = keys.STUCK_REPLACED.prefix
#: The replacement of a report is being requested (its request task has not created it yet).
PENDING = "pending"
#: getReports takes at most this many report types a call.
MAX_TYPES_PER_CALL = 10
#: Amazon's largest page (its default is 10): every further page costs a getReports token.
PAGE_SIZE = 100
REQUEUED_TTL_SECONDS = 90 * 24 * 3600  # Amazon keeps reports 90 days
#: A replacement's request not heard of for this long is taken for lost (its message gone): the next pass
#: requests it again (the request registry keeps two identical requests to one createReport).
PENDING_REPLACEMENT_SECONDS = 6 * 3600
#: Most reports finish within minutes; a report still waiting after this is stuck.
DEFAULT_THRESHOLD = timedelta(hours=2)
#: Types known to take longer as a rule.
THRESHOLDS: dict[str, timedelta] = {
    "GET_SALES_AND_TRAFFIC_REPORT": timedelta(hours=4),
    "GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL": timedelta(hours=4),
}

#: Queues the request of ``spec`` standing in for the stuck report ``replaces`` (never calls createReport itself).
Requeue = Callable[[ReportSpec, str], None]


def threshold_for(report_type: str) -> timedelta:
    """How long a report of ``report_type`` may stay IN_QUEUE or IN_PROGRESS before it counts as stuck."""
    return THRESHOLDS.get(report_type, DEFAULT_THRESHOLD)


class ReportsClient(Protocol):
    """The SP-API calls this needs (an :class:`~spreports.spapi.SpapiClient`)."""

    def get_reports(
        self,
        report_types: Sequence[str] | None = ...,
        processing_statuses: Sequence[str] | None = ...,
        *,
        page_size: int | None = ...,
    ) -> Iterable[Report]: ...

    def cancel_report(self, report_id: str) -> None: ...


class Replacements:
    """Which report stands in for a stuck one requested again: :data:`PENDING` until its request made it."""

    def __init__(self, store: redis.Redis) -> None:
        self._redis = store

    def start(self, seller_id: str, report_id: str) -> None:
        """``report_id`` is being requested again: its followers wait for the replacement."""
        key = self._key(seller_id, report_id)
        _call(lambda: self._redis.set(key, PENDING, ex=PENDING_REPLACEMENT_SECONDS))

    def record(self, seller_id: str, report_id: str, replacement_id: str) -> None:
        """``replacement_id`` stands in for ``report_id`` (and is itself never requested again)."""

        def write() -> None:
            with self._redis.pipeline() as pipe:
                pipe.set(self._key(seller_id, report_id), replacement_id, ex=REQUEUED_TTL_SECONDS)
                pipe.set(f"{REQUEUED_PREFIX}{seller_id}:{replacement_id}", 1, ex=REQUEUED_TTL_SECONDS)
                pipe.execute()

        _call(write)

    def abandon(self, seller_id: str, report_id: str) -> None:
        """The replacement's request failed for good: followers of ``report_id`` wait no more."""
        key = self._key(seller_id, report_id)
        _call(lambda: self._redis.eval(_ABANDON, 1, key, PENDING))

    def of(self, seller_id: str, report_id: str) -> str | None:
        """The replacement's reportId, :data:`PENDING`, or None when ``report_id`` was not requested again."""
        value = _call(lambda: self._redis.get(self._key(seller_id, report_id)))
        return value.decode() if isinstance(value, bytes) else None

    @staticmethod
    def _key(seller_id: str, report_id: str) -> str:
        return f"{REPLACED_PREFIX}{seller_id}:{report_id}"


def _call(action: Callable[[], T]) -> T:
    return redis_call("keeping the stuck reports' replacements", action)


# Only a pending mark goes: a replacement already recorded stays.
_ABANDON = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


@dataclass
class StuckReports:
    """What one pass found and did."""

    in_queue: list[str] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    not_ours: list[str] = field(default_factory=list)  # made by another program: reported, never cancelled
    requested_again: list[str] = field(default_factory=list)  # their replacement's request was queued
    cancelled: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # their cancel failed for now: the next pass tries again


def handle_stuck_reports(
    client: ReportsClient,
    store: redis.Redis,
    seller_id: str,
    report_types: Sequence[str],
    *,
    now: datetime,
    requeue: Requeue | None = None,
) -> StuckReports:
    """Find, log and count the seller's stuck reports; have the product's IN_QUEUE ones requested again once.

    Without ``requeue``, the product's stuck IN_QUEUE reports are cancelled without a successor.
    """
    found = StuckReports()
    registry, replacements = RequestRegistry(store), Replacements(store)
    for report in _waiting_reports(client, report_types):
        age = now - report.created_time
        if age <= threshold_for(report.report_type):
            continue
        status, report_id, counts = report.processing_status, report.report_id, f"{KEY_PREFIX}{report.report_type}"
        _count(store, counts, status.lower())
        log.warning("report %s (%s) of seller %s is stuck %s for %s",
                    report_id, report.report_type, seller_id, status, age)  # fmt: skip
        if status == "IN_PROGRESS":
            found.in_progress.append(report_id)  # Amazon cannot cancel it: reported only
            continue
        found.in_queue.append(report_id)
        spec = registry.made(seller_id, report_id)
        if spec is None:
            # Another application (or a person) made it: its owner decides, so it is only reported.
            _count(store, counts, "not_ours")
            found.not_ours.append(report_id)
            log.warning("stuck report %s was not made by spreports: reported, not cancelled", report_id)
            continue
        mark = f"{REQUEUED_PREFIX}{seller_id}:{report_id}"
        replacement = replacements.of(seller_id, report_id)
        # A mark that outlives a lost replacement request for long: the next pass after it requests again.
        if requeue is not None and replacement is None and _mark(store, mark):
            _request_again(requeue, spec, report_id, store, registry, replacements, mark)
            _count(store, counts, "requeued")
            found.requested_again.append(report_id)
            log.info("stuck report %s of seller %s is requested again", report_id, seller_id)
        # Requested again already (or itself a replacement): cancelled, not requested a third time. One whose
        # replacement is still being requested is left to that request, which cancels it once the new one exists.
        elif replacement != PENDING and _cancel(client, report_id, found):
            _count(store, counts, "cancelled")
    return found


@redis_errors("counting stuck reports")
def _count(store: redis.Redis, counts: str, field: str) -> None:
    store.hincrby(counts, field, 1)


@redis_errors("marking a stuck report requested again")
def _mark(store: redis.Redis, mark: str) -> bool:
    return bool(store.set(mark, 1, nx=True, ex=PENDING_REPLACEMENT_SECONDS))


def _waiting_reports(client: ReportsClient, report_types: Sequence[str]) -> list[Report]:
    reports: list[Report] = []
    for start in range(0, len(report_types), MAX_TYPES_PER_CALL):  # getReports takes at most 10 types
        types = list(report_types[start : start + MAX_TYPES_PER_CALL])
        reports.extend(client.get_reports(types, ["IN_QUEUE", "IN_PROGRESS"], page_size=PAGE_SIZE))
    return reports


def _request_again(
    requeue: Requeue,
    spec: ReportSpec,
    report_id: str,
    store: redis.Redis,
    registry: RequestRegistry,
    replacements: Replacements,
    mark: str,
) -> None:
    # Followers of the stuck report wait for its replacement from now on; the registry must not answer the
    # replacement's request with the stuck report itself.
    try:
        replacements.start(spec.seller_id, report_id)
        registry.forget(spec, report_id)
        requeue(spec, report_id)
    except BaseException:
        # Nothing was queued: the mark goes first, so that the next pass tries again whatever fails here.
        # Best effort: an error here must not hide the one being raised.
        with contextlib.suppress(*FAILURES), redis_errors("removing a stuck report's requeue mark"):
            store.delete(mark)
        with contextlib.suppress(*FAILURES):
            replacements.abandon(spec.seller_id, report_id)
        raise


def _cancel(client: ReportsClient, report_id: str, found: StuckReports) -> bool:
    try:
        client.cancel_report(report_id)
    except TransientError as exc:  # a quota wait among them: the cancel waits for the next pass, nothing else does
        log.warning("cancelling stuck report %s is deferred to the next sweep: %s", report_id, exc)
        found.deferred.append(report_id)
        return False
    except InvalidRequest as exc:  # it left IN_QUEUE meanwhile: nothing to cancel
        log.info("stuck report %s was not cancelled: %s", report_id, exc)
        return False
    found.cancelled.append(report_id)
    return True
