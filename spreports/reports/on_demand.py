"""A report on demand, as the request and follow tasks run it: requested once, then followed to its document.

:func:`request_report` makes the request (an identical report in flight or fresh is reused, see
:func:`~spreports.reports.obtain.obtain_report`), within the cooldown a FATAL report started, standing
in for a stuck report when asked to, and remembering what a restatement supersedes. :func:`follow_step`
reads one look at a followed report (getReport's answer) and says what comes next: its document
(:class:`Ready`), the report that replaced it (:class:`Replaced`), or another look later
(:class:`Running`, :class:`AwaitReason`); CANCELLED and FATAL raise their errors. Coming back later is
the caller's (a task's countdowns); nothing here waits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from spreports.errors import InvalidRequest, NotFound, RedisUnavailable, ReportFatal
from spreports.reports.cooldowns import check_cooldown, start_cooldown
from spreports.reports.fatal_ledger import FatalLedger
from spreports.reports.obtain import ReportSpec, RequestRegistry, obtain_report, report_outcome, resolve_target
from spreports.reports.restatements import Restatements
from spreports.reports.stuck import PENDING, Replacements
from spreports.runtime import Runtime
from spreports.spapi.models import Report
from spreports.spapi.ratelimit import prepaid
from spreports.task_arguments import DocumentRequest, ReportFollow, ReportRequest

log = logging.getLogger(__name__)

# A followed report that ends FATAL: how many looks its error document's reason is awaited for is the
# caller's; the count of looks is forgotten after an hour.
FATAL_POLLS_PREFIX = "spreports:fatal-polls:"
FATAL_POLLS_TTL_SECONDS = 3600


@dataclass(frozen=True)
class Requested:
    """A requested report's ids and how it was obtained (``reused``: ``new``, ``in-flight`` or ``done``)."""

    seller_id: str
    report_id: str
    report_type: str
    reused: str

    def summary(self) -> dict[str, str]:
        """The request task's result (what the follower chained after it reads)."""
        return {"seller_id": self.seller_id, "report_id": self.report_id, "report_type": self.report_type,
                "reused": self.reused}  # fmt: skip


def request_report(
    runtime: Runtime,
    request: ReportRequest,
    *,
    owner: str,
    prepaid_bucket: str | None = None,
) -> Requested:
    """createReport for a seller, unless an identical report in flight (or fresh) can be reused.

    ``owner`` names the run in the registry's pending mark; ``prepaid_bucket`` is the rate-limit bucket whose
    token an earlier run reserved for this one (spent by the first call to it). Raises the cooldown's :class:`~spreports.errors.QuotaWait`,
    :class:`~spreports.errors.RequestPending` (another run is requesting it),
    :class:`~spreports.errors.OutcomeUnknown` (it may exist already) and the SP-API's errors.
    """
    seller, marketplaces = resolve_target(runtime.settings, request.seller_id, request.marketplace_ids)
    spec = ReportSpec.of(seller, request.report_type, marketplaces, request.report_options,
                         request.data_start_time, request.data_end_time)  # fmt: skip
    options = runtime.settings.requests
    restatements = Restatements(runtime.redis)
    previous: tuple[str, str] | None = None
    # A FATAL report of the same kind starts a cooldown: deferred (a wait), no quota spent.
    check_cooldown(runtime.redis, seller, request.report_type, request.report_options)
    if request.restated:
        # Looked up before the new report replaces it as the request's last, and before createReport,
        # so that a retry of this lookup never pays for a second new report.
        previous = _last_document(runtime, restatements, spec)
    with prepaid(prepaid_bucket):
        obtained = obtain_report(
            spec,
            runtime.client(seller),
            RequestRegistry(runtime.redis),
            owner=owner,
            # A restatement wants Amazon's figures as they are now: never the earlier DONE report.
            reuse_done=timedelta(0) if request.restated else timedelta(seconds=options.reuse_done_seconds),
            check_amazon=options.check_amazon,
            now=datetime.now(UTC),
            replaces=request.replaces,
        )
        if request.replaces is not None:
            _stand_in(runtime, seller, request.replaces, obtained.report_id)
    if previous is not None and previous[0] != obtained.report_id:
        restatements.mark(seller, obtained.report_id, previous[1])
    restatements.remember(spec.fingerprint, obtained.report_id)
    return Requested(seller, obtained.report_id, spec.report_type, obtained.reused)


def _stand_in(runtime: Runtime, seller_id: str, stuck_id: str, replacement_id: str) -> None:
    """Record ``replacement_id`` for the followers of ``stuck_id``, then cancel the stuck one."""
    Replacements(runtime.redis).record(seller_id, stuck_id, replacement_id)
    try:
        runtime.client(seller_id).cancel_report(stuck_id)
    except InvalidRequest as exc:
        # It left IN_QUEUE meanwhile: it ends by itself, and its followers follow it to that end.
        log.info("stuck report %s was not cancelled: %s", stuck_id, exc)
        return
    log.info("stuck report %s of seller %s is cancelled; %s stands in for it", stuck_id, seller_id, replacement_id)


def _last_document(runtime: Runtime, restatements: Restatements, spec: ReportSpec) -> tuple[str, str] | None:
    """The (reportId, reportDocumentId) of the request's last report, when it is DONE with a document."""
    report_id = restatements.last(spec.fingerprint)
    if report_id is None:
        return None
    try:
        report = runtime.client(spec.seller_id).get_report(report_id)
    except (NotFound, InvalidRequest):
        log.warning("report %s of seller %s is gone: its restatement supersedes nothing", report_id, spec.seller_id)
        return None
    if report.processing_status != "DONE" or not report.report_document_id:
        return None
    return report_id, report.report_document_id


# --- following a report --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """The report is DONE: its document is to be retrieved."""

    document: DocumentRequest


@dataclass(frozen=True)
class Replaced:
    """The report was stuck and cancelled for a replacement: follow that one instead."""

    follow: ReportFollow


@dataclass(frozen=True)
class Running:
    """Look again later: the report is still ``status`` (in words)."""

    status: str


@dataclass(frozen=True)
class AwaitReason:
    """The report is FATAL; its error document was queued for retrieval: look again shortly for its reason."""


FollowStep = Ready | Replaced | Running | AwaitReason


def follow_step(
    runtime: Runtime,
    args: ReportFollow,
    report: Report,
    *,
    enqueue: Callable[[DocumentRequest], None],
    reason_polls: int,
) -> FollowStep:
    """What comes after one look at a followed report (``report``: getReport's answer).

    A FATAL report starts its cooldown and raises :class:`~spreports.errors.ReportFatal` with the
    reason its error document gives; the first time, that document is queued (``enqueue``), and its reason
    is awaited for ``reason_polls`` looks (:class:`AwaitReason`). A CANCELLED one not replaced raises
    :class:`~spreports.errors.ReportCancelled`.
    """
    if report.processing_status == "CANCELLED":
        replaced = _replacement(runtime, args)
        if replaced is not None:
            return replaced
    try:
        finished = report_outcome(report, args.seller_id)
    except ReportFatal as fatal:
        # With or without an error document: a request repeated right away would fail the same way.
        until = _cool_down(runtime, args.seller_id, report)
        if not report.report_document_id:
            log.warning(
                "report %s (%s) of seller %s is FATAL without an error document; requests of it wait until %s",
                report.report_id, report.report_type, args.seller_id, until.isoformat(timespec="seconds") if until else "?",
            )  # fmt: skip
            raise
        reason = FatalLedger(runtime.redis).reason_of(args.seller_id, report.report_id)
        if reason is not None:
            raise ReportFatal(f"{fatal}: {reason}") from None
        if _poll_reason(runtime, args.seller_id, report, enqueue) <= reason_polls:
            return AwaitReason()
        raise
    if finished is None:
        return Running(report.processing_status)
    log.info("report %s of seller %s is DONE; retrieving document %s",
             args.report_id, args.seller_id, finished.report_document_id)  # fmt: skip
    return Ready(DocumentRequest(seller_id=args.seller_id, report_document_id=finished.report_document_id,
                                 report_id=finished.report_id, report_type=finished.report_type))  # fmt: skip


def _replacement(runtime: Runtime, args: ReportFollow) -> Replaced | Running | None:
    """A stuck report cancelled for a replacement: the replacement (or a wait for it to be requested)."""
    replacement = Replacements(runtime.redis).of(args.seller_id, args.report_id)
    if replacement is None:
        return None  # cancelled for another reason: the caller learns it
    if replacement == PENDING:
        return Running("CANCELLED, its replacement being requested,")
    log.info("report %s of seller %s was stuck and cancelled; following its replacement %s",
             args.report_id, args.seller_id, replacement)  # fmt: skip
    return Replaced(ReportFollow(seller_id=args.seller_id, report_id=replacement, report_type=args.report_type))


def _cool_down(runtime: Runtime, seller_id: str, report: Report) -> datetime | None:
    """Start the cooldown of a FATAL report's (seller, type), once per report; None when Redis failed."""
    try:
        return start_cooldown(runtime.redis, seller_id, report.report_type, report_id=report.report_id)
    except RedisUnavailable as exc:
        # The FATAL is still told to the caller; without its cooldown a new request may only fail again.
        log.warning(
            "the cooldown of FATAL report %s of seller %s was not started: %s", report.report_id, seller_id, exc
        )
        return None


def _poll_reason(runtime: Runtime, seller_id: str, report: Report, enqueue: Callable[[DocumentRequest], None]) -> int:
    """Count one more look for a FATAL report's reason; the first queues its error document's retrieval
    (kept under ``_errors/``, its reason recorded, as the relay would do). Returns the looks so far."""
    polls_key = f"{FATAL_POLLS_PREFIX}{seller_id}:{report.report_id}"
    polls = int(runtime.redis.incr(polls_key))
    runtime.redis.expire(polls_key, FATAL_POLLS_TTL_SECONDS)
    if polls == 1:
        enqueue(DocumentRequest.parse(seller_id=seller_id, report_document_id=report.report_document_id or "",
                                      report_id=report.report_id, report_type=report.report_type,
                                      processing_status="FATAL"))  # fmt: skip
    return polls
