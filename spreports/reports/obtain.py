"""On-demand reports that never pay createReport twice, followed to their end.

createReport costs one token a minute per seller. Before paying it, :func:`obtain_report` looks for a
report identical to the request (same seller, type, marketplaces, options and data window) that is
still IN_QUEUE or IN_PROGRESS, or DONE within the freshness window, and reuses it:

1. the fleet's registry in Redis: one key per request fingerprint holding the reportId. A run that
   finds no key takes it with ``SET NX`` (a *pending* mark naming the run), so of two workers asking
   for the same report at once exactly one calls createReport; the other waits for the reportId
   (:class:`RequestPending`).
2. Amazon's own list (getReports, one call), which also knows reports made before the registry's key
   expired or by another program. ``Report`` carries no options, so only option-less requests match.

Every report the product creates has its spec remembered under its reportId for Amazon's 90 days
(:meth:`RequestRegistry.made`): what a stuck report is requested again with, and the sign that the
product made it at all.

:func:`report_outcome` reads a report's state for the follower: still running, DONE with a document,
or a clear error for CANCELLED and FATAL.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Literal, Protocol, TypeVar

import redis

from spreports import keys
from spreports.errors import (
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    ReportCancelled,
    ReportFatal,
    RequestPending,
    TransientError,
)
from spreports.redis_errors import FAILURES, redis_call
from spreports.report_types import rules_for
from spreports.settings import Settings
from spreports.spapi.models import Report

log = logging.getLogger(__name__)

KEY_PREFIX = keys.REPORT_REQUEST.prefix
PENDING = "pending:"
# How long a pending mark outlives its last renewal: longer than any quota wait (at most 10 minutes).
PENDING_TTL_SECONDS = 15 * 60
# How long the registry remembers a reportId: reports rarely stay in flight longer (a stuck one is
# given up by the follower), and DONE ones are reused only within the freshness window anyway.
IN_FLIGHT_SECONDS = 24 * 3600
# Another run holds the pending mark: look again after this long.
PENDING_RETRY_SECONDS = 10.0
MADE_PREFIX = keys.REPORT_MADE.prefix
# Amazon keeps a report 90 days: its spec is remembered as long as the report can be seen.
MADE_TTL_SECONDS = 90 * 24 * 3600
IN_FLIGHT = ("IN_QUEUE", "IN_PROGRESS")

Reuse = Literal["new", "in-flight", "done"]


@dataclass(frozen=True)
class ReportSpec:
    """What makes two report requests identical: the same answer from Amazon."""

    seller_id: str
    report_type: str
    marketplace_ids: tuple[str, ...]
    report_options: tuple[tuple[str, str], ...] = ()
    data_start_time: datetime | None = None
    data_end_time: datetime | None = None

    @classmethod
    def of(
        cls,
        seller_id: str,
        report_type: str,
        marketplace_ids: Sequence[str],
        report_options: dict[str, str] | None = None,
        data_start_time: datetime | None = None,
        data_end_time: datetime | None = None,
    ) -> ReportSpec:
        """A spec in canonical form: marketplaces and options sorted, times in UTC."""
        return cls(
            seller_id,
            report_type,
            tuple(sorted(set(marketplace_ids))),
            tuple(sorted((report_options or {}).items())),
            _utc(data_start_time),
            _utc(data_end_time),
        )

    @property
    def options(self) -> dict[str, str] | None:
        """The report options as createReport takes them."""
        return dict(self.report_options) or None

    @property
    def fingerprint(self) -> str:
        """A stable digest of the spec (the registry's key)."""
        canonical = json.dumps(
            [
                self.seller_id,
                self.report_type,
                self.marketplace_ids,
                self.report_options,
                _iso(self.data_start_time),
                _iso(self.data_end_time),
            ]
        )
        return hashlib.sha256(canonical.encode()).hexdigest()[:32]

    def to_json(self) -> str:
        """The spec as JSON (see :meth:`from_json`)."""
        return json.dumps(
            {
                "seller_id": self.seller_id,
                "report_type": self.report_type,
                "marketplace_ids": list(self.marketplace_ids),
                "report_options": dict(self.report_options),
                "data_start_time": _iso(self.data_start_time),
                "data_end_time": _iso(self.data_end_time),
            }
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ReportSpec:
        """The spec :meth:`to_json` wrote."""
        data = json.loads(text)
        return cls.of(
            data["seller_id"],
            data["report_type"],
            data["marketplace_ids"],
            data["report_options"],
            _parse(data["data_start_time"]),
            _parse(data["data_end_time"]),
        )

    def matches(self, report: Report) -> bool:
        """Whether Amazon's ``report`` answers this spec (type, marketplaces, window; never with options)."""
        return (
            not self.report_options
            and report.report_type == self.report_type
            and tuple(sorted(set(report.marketplace_ids or ()))) == self.marketplace_ids
            and _utc(report.data_start_time) == self.data_start_time
            and _utc(report.data_end_time) == self.data_end_time
        )


@dataclass(frozen=True)
class Obtained:
    """The report that answers a request, and whether it was created for it or reused."""

    report_id: str
    reused: Reuse


def resolve_target(settings: Settings, seller_id: str | None, marketplace_ids: Sequence[str]) -> tuple[str, list[str]]:
    """The seller (default ``SPREPORTS_SELLER_ID``) and marketplaces (default: the seller's configured ones)."""
    seller = seller_id or settings.seller_id
    if not seller:
        raise InvalidRequest("no seller_id given and SPREPORTS_SELLER_ID is not set")
    configured = settings.sellers().get(seller)
    marketplaces = list(marketplace_ids) or (list(configured.marketplace_ids) if configured else [])
    if not marketplaces:
        raise InvalidRequest(f"no marketplace_ids given and none configured for seller {seller}")
    return seller, marketplaces


class ReportApi(Protocol):
    """The part of the SP-API client a request needs."""

    def get_report(self, report_id: str) -> Report: ...

    def get_reports(
        self,
        report_types: Sequence[str] | None = None,
        processing_statuses: Sequence[str] | None = None,
        marketplace_ids: Sequence[str] | None = None,
        created_since: datetime | None = None,
        created_until: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[Report]: ...

    def create_report(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        *,
        report_options: dict[str, str] | None = None,
        data_start_time: datetime | None = None,
        data_end_time: datetime | None = None,
    ) -> str: ...


class RequestRegistry:
    """The fleet's reportId per request fingerprint, in Redis (a pending mark while one run creates it)."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def get(self, spec: ReportSpec) -> str | None:
        """The reportId, ``pending:<owner>``, or None."""
        value = _redis_call(lambda: self._redis.get(KEY_PREFIX + spec.fingerprint))
        return value.decode() if isinstance(value, bytes) else None

    def claim(self, spec: ReportSpec, owner: str) -> bool:
        """Take the pending mark, or renew it when ``owner`` holds it; False when anything else is there."""
        key, mark = KEY_PREFIX + spec.fingerprint, PENDING + owner
        return bool(_redis_call(lambda: self._redis.eval(_CLAIM, 1, key, mark, PENDING_TTL_SECONDS)))

    def record(self, spec: ReportSpec, report_id: str, ttl: int) -> None:
        """Remember the reportId that answers ``spec`` for ``ttl`` seconds."""
        _redis_call(lambda: self._redis.set(KEY_PREFIX + spec.fingerprint, report_id, ex=ttl))

    def forget(self, spec: ReportSpec, value: str) -> None:
        """Drop the entry if it still holds ``value`` (a report no longer reusable, or our own pending mark)."""
        _redis_call(lambda: self._redis.eval(_FORGET, 1, KEY_PREFIX + spec.fingerprint, value))

    def remember_made(self, spec: ReportSpec, report_id: str) -> None:
        """Remember that the product created ``report_id`` for ``spec`` (for as long as Amazon keeps it)."""
        key = f"{MADE_PREFIX}{spec.seller_id}:{report_id}"
        _redis_call(lambda: self._redis.set(key, spec.to_json(), ex=MADE_TTL_SECONDS))

    def made(self, seller_id: str, report_id: str) -> ReportSpec | None:
        """The spec the product created ``report_id`` for; None for a report it did not make (or forgot)."""
        value = _redis_call(lambda: self._redis.get(f"{MADE_PREFIX}{seller_id}:{report_id}"))
        return ReportSpec.from_json(value) if isinstance(value, bytes) else None


# Atomic, so two runs never both believe they hold the mark.
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if value and value ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
_FORGET = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def obtain_report(
    spec: ReportSpec,
    api: ReportApi,
    registry: RequestRegistry,
    *,
    owner: str,
    reuse_done: timedelta,
    check_amazon: bool,
    now: datetime,
    replaces: str | None = None,
) -> Obtained:
    """The report answering ``spec``: an identical one reused, else a new one (createReport, once fleet-wide).

    ``owner`` names the run (the same across its retries). ``replaces`` names a stuck report this request
    stands in for: never the answer, even while it is still IN_QUEUE. Raises :class:`RequestPending` while another
    run creates the identical report, and lets the client's errors through (a quota wait among them:
    the pending mark stays with ``owner`` for its next attempt). A request Amazon's rules for the type forbid
    (settlement reports; Sales and Traffic for two marketplaces) raises
    :class:`~spreports.errors.InvalidRequest` before any call (:func:`refuse_broken_rules`).
    """
    refuse_broken_rules(spec.report_type, spec.marketplace_ids)
    for _ in range(3):  # a reused report found unusable is forgotten, then the registry is read again
        value = registry.get(spec)
        if value is None or value == PENDING + owner:
            if registry.claim(spec, owner):
                return _create(
                    spec,
                    api,
                    registry,
                    owner=owner,
                    reuse_done=reuse_done,
                    check_amazon=check_amazon,
                    now=now,
                    replaces=replaces,
                )
            continue
        if value.startswith(PENDING):
            raise RequestPending(
                f"an identical {spec.report_type} report is being requested by another task",
                retry_after=PENDING_RETRY_SECONDS,
            )
        report = None if value == replaces else _report_or_none(api, value)
        reuse = None if report is None else reusable(report, reuse_done, now)
        if reuse is not None:
            log.info("reusing %s report %s (%s) for seller %s", spec.report_type, value, reuse, spec.seller_id)
            return Obtained(value, reuse)
        registry.forget(spec, value)
    raise RequestPending(
        f"the {spec.report_type} request registry keeps changing; trying again", retry_after=PENDING_RETRY_SECONDS
    )


def refuse_broken_rules(report_type: str, marketplace_ids: Sequence[str]) -> None:
    """Raise a clear one-line :class:`~spreports.errors.InvalidRequest` for a request Amazon's rules for
    the type forbid (:mod:`spreports.report_types`), before anything is sent."""
    refuse_unrequestable(report_type)
    rules = rules_for(report_type)
    if rules.max_marketplaces is not None and len(set(marketplace_ids)) > rules.max_marketplaces:
        given = sorted(set(marketplace_ids))
        raise InvalidRequest(
            f"{report_type} takes at most {rules.max_marketplaces} marketplace(s) per request (Amazon's rule for "
            f"this type, {rules.source}); {len(given)} given ({', '.join(given[:5])}): request each one on its own"
        )


def refuse_unrequestable(report_type: str) -> None:
    """Raise a clear :class:`~spreports.errors.InvalidRequest` for a type createReport never accepts."""
    if not rules_for(report_type).requestable:
        raise InvalidRequest(
            f"{report_type} cannot be requested: Amazon makes these reports by itself on its own schedule; "
            f"their documents are retrieved as they appear (notifications, or `spreports reports list --type "
            f"{report_type}`), so remove it from requests and backfills"
        )


def _create(
    spec: ReportSpec,
    api: ReportApi,
    registry: RequestRegistry,
    *,
    owner: str,
    reuse_done: timedelta,
    check_amazon: bool,
    now: datetime,
    replaces: str | None,
) -> Obtained:
    ttl = IN_FLIGHT_SECONDS + int(reuse_done.total_seconds())
    found = find_identical(spec, api, reuse_done, now, exclude=replaces) if check_amazon else None
    if found is not None:
        registry.record(spec, found.report_id, ttl)
        log.info("reusing Amazon's %s report %s for seller %s", spec.report_type, found.report_id, spec.seller_id)
        return found
    try:
        report_id = api.create_report(
            spec.report_type,
            spec.marketplace_ids,
            report_options=spec.options,
            data_start_time=spec.data_start_time,
            data_end_time=spec.data_end_time,
        )
    except Exception as exc:
        # A run that comes back (a quota wait, a 429) keeps its mark; a failure frees it for the next request.
        if not isinstance(exc, TransientError) or isinstance(exc, OutcomeUnknown):
            registry.forget(spec, PENDING + owner)
        raise
    try:
        registry.remember_made(spec, report_id)
        registry.record(spec, report_id, ttl)
    except FAILURES as exc:
        # The report exists: a retry would create it again. Its bookkeeping is lost (the stuck pass will not
        # know it as ours, an identical request may not reuse it), the request is answered all the same.
        log.warning("requested %s report %s for seller %s, but Redis did not record it: %s",
                    spec.report_type, report_id, spec.seller_id, exc)  # fmt: skip
    log.info("requested %s report %s for seller %s", spec.report_type, report_id, spec.seller_id)
    return Obtained(report_id, "new")


def find_identical(
    spec: ReportSpec, api: ReportApi, reuse_done: timedelta, now: datetime, *, exclude: str | None = None
) -> Obtained | None:
    """An identical report Amazon lists (one getReports page of 100, newest first) that can be reused.

    ``exclude`` is a report that must not be the answer (the stuck one a request replaces).
    """
    if spec.report_options:
        return None  # Amazon's Report does not show options: an identical one cannot be told apart
    statuses = [*IN_FLIGHT, "DONE"] if reuse_done > timedelta(0) else list(IN_FLIGHT)
    since = now - max(reuse_done, timedelta(seconds=IN_FLIGHT_SECONDS))
    reports = api.get_reports(
        report_types=[spec.report_type],
        processing_statuses=statuses,
        marketplace_ids=list(spec.marketplace_ids)[:10],
        created_since=since,
        page_size=100,
    )
    # One page is what the check may cost: islice stops before the listing asks for the next one.
    for report in islice(reports, 100):
        if report.report_id == exclude:
            continue
        reuse = reusable(report, reuse_done, now) if spec.matches(report) else None
        if reuse is not None:
            return Obtained(report.report_id, reuse)
    return None


def reusable(report: Report, reuse_done: timedelta, now: datetime) -> Reuse | None:
    """How ``report`` can answer a new identical request: in flight, DONE and fresh, or not at all."""
    if report.processing_status in IN_FLIGHT:
        return "in-flight"
    # No window, no reuse: Amazon's clock may run ahead of ours, so "finished 0 s ago" is not asked.
    if report.processing_status == "DONE" and report.report_document_id and reuse_done > timedelta(0):
        finished = report.processing_end_time or report.created_time
        if now - finished <= reuse_done:
            return "done"
    return None


def _report_or_none(api: ReportApi, report_id: str) -> Report | None:
    try:
        return api.get_report(report_id)
    except NotFound:
        return None
    except InvalidRequest as exc:
        # Amazon answers an id it does not know (any more: it keeps reports 90 days) with 400 InvalidInput.
        if exc.status == 400:
            return None
        raise


@dataclass(frozen=True)
class Finished:
    """A DONE report and its document."""

    report_id: str
    report_type: str
    report_document_id: str


def report_outcome(report: Report, seller_id: str) -> Finished | None:
    """None while ``report`` runs; its document when DONE; CANCELLED and FATAL raise a clear error."""
    status = report.processing_status
    what = f"{report.report_type} report {report.report_id} of seller {seller_id}"
    if status in IN_FLIGHT:
        return None
    if status == "DONE" and report.report_document_id:
        return Finished(report.report_id, report.report_type, report.report_document_id)
    if status == "DONE":
        raise ReportFatal(f"{what} is DONE but Amazon gave it no document")
    if status == "CANCELLED":
        raise ReportCancelled(
            f"{what} was CANCELLED: Amazon found no data for it (or it was cancelled on request); no document"
        )
    document = f"; its error document {report.report_document_id} explains why" if report.report_document_id else ""
    raise ReportFatal(f"{what} ended FATAL: Amazon aborted it{document}")


def follow_countdown(polls: int, first: float, longest: float) -> float:
    """Seconds before poll number ``polls + 1``: ``first``, doubling, at most ``longest``."""
    return min(first * 2.0 ** min(polls, 30), longest)


def followed_for(polls: int, first: float, longest: float) -> float:
    """Seconds spent waiting over ``polls`` polls (the sum of their countdowns)."""
    return sum(follow_countdown(n, first, longest) for n in range(polls))


T = TypeVar("T")


def _redis_call(action: Callable[[], T]) -> T:
    return redis_call("keeping the request registry", action)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
