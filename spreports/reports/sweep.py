"""The safety net: find finished reports whose notification never arrived, and what else a sweep re-drives.

Amazon advises a backup for late or lost notifications. :func:`reports_to_retrieve` lists recent DONE
and FATAL reports (getReports) of the report types the product cares about and yields those with a
document that is not stored yet. :class:`Sweep` is the whole periodic pass the sweep task runs: the
failure ledger's documents whose failure may have passed, dead writers' leftovers in the storage, each
seller's finished reports, then its stuck reports. It queues nothing itself: the caller's ``enqueue``
and ``request_again`` send the work (retrieval is idempotent anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

import redis

from spreports.errors import SpreportsError
from spreports.reports.failure_ledger import FailureLedger
from spreports.reports.obtain import ReportSpec
from spreports.reports.stuck import handle_stuck_reports
from spreports.runtime import Runtime
from spreports.schedules import load_schedules_file
from spreports.task_arguments import DocumentRequest, ReportRequest

log = logging.getLogger(__name__)

# getReports accepts at most 10 report types per call.
MAX_TYPES_PER_CALL = 10
# Amazon's largest page (its default is 10): every further page costs a getReports token, one per 45 s.
PAGE_SIZE = 100
DEFAULT_LOOKBACK = timedelta(hours=24)

SWEEP_MARK_PREFIX = "spreports:sweep:queued:"
# Longer than a sweep period, so a queued document is not queued again while it waits for a worker.
SWEEP_MARK_TTL_SECONDS = 3600
# The sweep looks for dead writers' leftovers in today's and yesterday's folders every time, and in every
# folder, whatever its day, once per this period (the first sweep of the fleet's day takes it): a part of
# a day whose sweeps never ran (the fleet was down) is removed too, and the whole tree is listed rarely.
STALE_PARTS_FULL_SCAN_KEY = "spreports:sweep:stale-parts-full-scan"
STALE_PARTS_FULL_SCAN_SECONDS = 24 * 3600


class FinishedReport(Protocol):
    """The fields of a report the sweep reads."""

    @property
    def report_id(self) -> str: ...
    @property
    def report_type(self) -> str: ...
    @property
    def processing_status(self) -> str: ...
    @property
    def report_document_id(self) -> str | None: ...


class ReportLister(Protocol):
    """The part of the SP-API client the sweep needs."""

    def get_reports(
        self,
        *,
        report_types: Sequence[str],
        processing_statuses: Sequence[str],
        created_since: datetime,
        page_size: int,
    ) -> Iterator[FinishedReport]: ...


def reports_to_retrieve(
    client: ReportLister,
    report_types: Sequence[str],
    is_handled: Callable[[FinishedReport], bool],
    *,
    now: datetime,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> Iterator[FinishedReport]:
    """Yield DONE/FATAL reports created within ``lookback`` whose document ``is_handled`` denies (not stored,
    not being retrieved)."""
    types = sorted(set(report_types))
    seen: set[str] = set()
    for start in range(0, len(types), MAX_TYPES_PER_CALL):
        reports = client.get_reports(
            report_types=types[start : start + MAX_TYPES_PER_CALL],
            processing_statuses=["DONE", "FATAL"],
            created_since=now - lookback,
            page_size=PAGE_SIZE,
        )
        for report in reports:
            document_id = report.report_document_id
            # The same document can back several reports; fetch it once.
            if document_id is None or document_id in seen or is_handled(report):
                continue
            seen.add(document_id)
            yield report


@dataclass(frozen=True)
class Sweep:
    """One periodic pass of the safety nets (see the module docstring), on one process's connections."""

    runtime: Runtime
    enqueue: Callable[[DocumentRequest], None]
    """Queue a document's retrieval."""
    request_again: Callable[[ReportRequest], None]
    """Queue the request of a stuck report's replacement."""
    being_retrieved: Callable[[str, str], bool]
    """Whether a run is retrieving a (seller's) document right now (holds its claim)."""

    def run(self) -> dict[str, int | str]:
        """Run the pass; returns per seller the count queued (or the failure), and ``recovered``: the total."""
        results: dict[str, int | str] = {}
        redriven = self._redrive_failures()
        if redriven:
            results["failure-ledger"] = redriven
        removed = self._remove_stale_parts()
        if removed:
            results["stale-parts"] = removed
        report_types = set(self.runtime.settings.sqs.report_types)
        if self.runtime.settings.schedules_file is not None:
            report_types.update(load_schedules_file(self.runtime.settings.schedules_file).report_types())
        if not report_types:
            log.warning(
                "sweep skipped: set SPREPORTS_SQS__REPORT_TYPES or SPREPORTS_SCHEDULES_FILE to name report types"
            )
            return results
        recovered = 0
        for seller_id in self.runtime.settings.sellers():
            try:
                results[seller_id] = found = self._sweep_seller(seller_id, sorted(report_types))
                recovered += found
            except (SpreportsError, redis.RedisError) as exc:
                # One seller's failure (a revoked grant, throttling) must not stop the others; the next sweep retries.
                log.warning("sweep for seller %s failed: %s", seller_id, exc)
                results[seller_id] = f"failed: {type(exc).__name__}: {exc}"
            # The safety nets never skip one another: the stuck pass runs after the sweep, whatever the sweep met,
            # so that its getReports pages never take the sweep's turn of the quota, and nothing it meets stops it.
            stuck = self._stuck_pass(seller_id, sorted(report_types))
            if stuck is not None:
                results[f"{seller_id}:stuck"] = stuck
        results["recovered"] = recovered
        # A number rather than silence: recoveries on every sweep mean notifications are not arriving.
        log.log(
            logging.WARNING if recovered else logging.INFO,
            "sweep recovered %d finished report(s) whose notification never came%s",
            recovered,
            "; check the relay and the notification subscriptions" if recovered else "",
        )
        return results

    def _remove_stale_parts(self) -> int:
        """Remove what writers killed mid-write left in the storage (today's and yesterday's folders; once a
        day every folder)."""
        today = datetime.now(UTC).date()
        days: list[date] | None = [today, today - timedelta(days=1)]
        try:
            if self.runtime.redis.set(STALE_PARTS_FULL_SCAN_KEY, 1, nx=True, ex=STALE_PARTS_FULL_SCAN_SECONDS):
                days = None
        except (redis.RedisError, OSError) as exc:
            log.warning(
                "the clean-up of unfinished writes looks at recent days only: Redis failed (%s)", type(exc).__name__
            )
        try:
            removed = self.runtime.storage.remove_stale_parts(days)
        except SpreportsError as exc:
            log.warning("the clean-up of unfinished writes failed: %s", exc)
            return 0
        if removed:
            log.info("removed %d unfinished write(s) of dead workers from the storage", removed)
        return removed

    def _redrive_failures(self) -> int:
        """Queue again the documents that failed for good on a condition that may have passed (an outage)."""
        enqueued = 0
        for entry in FailureLedger(self.runtime.redis).entries():
            request = entry.request
            mark = f"{SWEEP_MARK_PREFIX}{request.seller_id}:{request.report_document_id}"
            if entry.may_pass and self.runtime.redis.set(mark, 1, nx=True, ex=SWEEP_MARK_TTL_SECONDS):
                self.enqueue(request)
                enqueued += 1
        if enqueued:
            log.info("sweep queued %d document(s) of the failure ledger again", enqueued)
        return enqueued

    def _stuck_pass(self, seller_id: str, report_types: list[str]) -> str | None:
        """Handle the seller's stuck reports; None, or the failure (logged) that cut the pass short."""
        try:
            # A stuck IN_QUEUE report is requested again by a request task of its own, which waits for the quota
            # and the cooldowns as any request does: the pass itself never waits for createReport.
            handle_stuck_reports(self.runtime.client(seller_id), self.runtime.redis, seller_id, report_types, now=datetime.now(UTC),
                                 requeue=self._replace)  # fmt: skip
        except Exception as exc:
            log.warning("the stuck-report pass for seller %s failed: %s", seller_id, exc)
            return f"failed: {type(exc).__name__}: {exc}"
        return None

    def _replace(self, spec: ReportSpec, replaces: str) -> None:
        self.request_again(
            ReportRequest(
                report_type=spec.report_type,
                seller_id=spec.seller_id,
                marketplace_ids=list(spec.marketplace_ids),
                data_start_time=spec.data_start_time,
                data_end_time=spec.data_end_time,
                report_options=spec.options,
                replaces=replaces,
            )
        )

    def _sweep_seller(self, seller_id: str, report_types: list[str]) -> int:
        def is_handled(report: FinishedReport) -> bool:
            # Stored, or being retrieved right now (a run holds its claim): nothing for the safety net to do.
            document_id = report.report_document_id or ""
            if self.runtime.storage.find(seller_id, document_id) is not None:
                return True
            return self.being_retrieved(seller_id, document_id)

        enqueued = 0
        for report in reports_to_retrieve(
            self.runtime.client(seller_id), report_types, is_handled, now=datetime.now(UTC)
        ):
            # A document already queued by an earlier sweep (still waiting or downloading) is not queued again.
            mark = f"{SWEEP_MARK_PREFIX}{seller_id}:{report.report_document_id}"
            if not self.runtime.redis.set(mark, 1, nx=True, ex=SWEEP_MARK_TTL_SECONDS):
                continue
            request = DocumentRequest(
                seller_id=seller_id,
                report_document_id=report.report_document_id or "",
                report_id=report.report_id,
                report_type=report.report_type,
                processing_status=report.processing_status,
            )
            self.enqueue(request)
            enqueued += 1
        return enqueued
