"""The simulator's state: reports, schedules, documents, destinations, subscriptions and tokens.

:meth:`World.tick` moves time-driven things along on the simulated clock: due schedules create
reports, reports go IN_QUEUE -> IN_PROGRESS -> DONE/CANCELLED/FATAL, each DONE report gets a document,
and each finished report is handed to ``on_finished`` (the notifier). One lock guards it all.
"""

from __future__ import annotations

import itertools
import json
import random
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from spreports.simulator.clock import SimClock, iso
from spreports.simulator.config import Faults, SimulatorConfig
from spreports.simulator.content import DocumentBody, DocumentSpec
from spreports.simulator.periods import first_run_after, occurrence

FINAL_STATUSES = ("DONE", "CANCELLED", "FATAL")
#: "Reports are retained for a maximum of 90 days": older ones are gone from getReports and getReport.
RETENTION_DAYS = 90
# What the error documents of FATAL reports say, in the words sellers report seeing.
FATAL_REASONS = (
    "The report could not be generated because the requested date range is too large for this report type.",
    "Report generation failed: an internal error occurred. Request the report again later.",
    "The report could not be generated because the requested data is not available for this seller.",
)


@dataclass
class Report:
    """One report as the Reports API sees it (times are simulated seconds)."""

    seller_id: str
    report_id: str
    report_type: str
    marketplace_ids: tuple[str, ...]
    created: float
    status: str = "IN_QUEUE"
    data_start: str | None = None
    data_end: str | None = None
    schedule_id: str | None = None
    started: float | None = None
    ended: float | None = None
    document_id: str | None = None
    stuck: bool = False
    #: Stays IN_QUEUE until cancelled or finished (the ``queued_reports`` fault).
    queued: bool = False
    #: The reportOptions it was requested with (Amazon never shows them again; tests read them here).
    options: dict[str, str] = field(default_factory=dict)

    def to_json(self, clock: SimClock) -> dict[str, Any]:
        """The ``Report`` object of the model."""
        body: dict[str, Any] = {
            "reportId": self.report_id,
            "reportType": self.report_type,
            "marketplaceIds": list(self.marketplace_ids),
            "createdTime": iso(clock.at(self.created)),
            "processingStatus": self.status,
        }
        optional = {
            "dataStartTime": self.data_start,
            "dataEndTime": self.data_end,
            "reportScheduleId": self.schedule_id,
            "processingStartTime": None if self.started is None else iso(clock.at(self.started)),
            "processingEndTime": None if self.ended is None else iso(clock.at(self.ended)),
            "reportDocumentId": self.document_id,
        }
        body.update({key: value for key, value in optional.items() if value is not None})
        return body


@dataclass
class Schedule:
    """A report schedule; times are simulated seconds. ``next_at`` is run number ``runs`` counted from ``first``."""

    seller_id: str
    schedule_id: str
    report_type: str
    marketplace_ids: tuple[str, ...]
    period: str
    next_at: float
    report_options: dict[str, str] = field(default_factory=dict)
    first: float = 0.0
    runs: int = 0

    def move_to(self, clock: SimClock, runs: int) -> None:
        """Make run number ``runs`` the next one (counted from ``first``, so a month is a calendar month)."""
        self.runs = runs
        self.next_at = clock.seconds_of(occurrence(clock.at(self.first), self.period, runs))

    def to_json(self, clock: SimClock) -> dict[str, Any]:
        """The ``ReportSchedule`` object of the model."""
        body: dict[str, Any] = {
            "reportScheduleId": self.schedule_id,
            "reportType": self.report_type,
            "marketplaceIds": list(self.marketplace_ids),
            "period": self.period,
            "nextReportCreationTime": iso(clock.at(self.next_at)),
        }
        if self.report_options:
            body["reportOptions"] = dict(self.report_options)
        return body


@dataclass
class Document:
    """A stored report document; the bytes are produced on demand."""

    seller_id: str
    document_id: str
    report_id: str
    spec: DocumentSpec
    marketplace_ids: tuple[str, ...]
    _body: DocumentBody | None = None

    @property
    def body(self) -> DocumentBody:
        """The document's bytes (built on first use)."""
        if self._body is None:
            self._body = DocumentBody(self.spec, self.marketplace_ids)
        return self._body


@dataclass
class Grant:
    """What an access token allows: a seller's calls, grantless calls (``scope``) or restricted paths (RDT)."""

    seller_id: str | None
    expires_at: float
    scope: str | None = None
    restricted: frozenset[tuple[str, str]] | None = None


@dataclass
class Destination:
    """A notification destination (an SQS queue)."""

    destination_id: str
    name: str
    arn: str


@dataclass
class Subscription:
    """A seller's subscription to a notification type."""

    seller_id: str
    notification_type: str
    subscription_id: str
    payload_version: str
    destination_id: str
    processing_directive: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``Subscription`` object of the model."""
        body: dict[str, Any] = {
            "subscriptionId": self.subscription_id,
            "payloadVersion": self.payload_version,
            "destinationId": self.destination_id,
        }
        if self.processing_directive:
            body["processingDirective"] = self.processing_directive
        return body


class World:
    """All simulated state and its evolution over simulated time."""

    def __init__(self, config: SimulatorConfig, clock: SimClock, faults: Faults) -> None:
        self.config = config
        self.clock = clock
        self.faults = faults
        self.lock = threading.RLock()
        self.rng = random.Random(config.seed)
        self.reports: dict[tuple[str, str], Report] = {}
        self.active: set[tuple[str, str]] = set()
        self.schedules: dict[tuple[str, str], Schedule] = {}
        self.documents: dict[str, Document] = {}
        self.destinations: dict[str, Destination] = {}
        self.subscriptions: dict[tuple[str, str], list[Subscription]] = {}
        self.grants: dict[str, Grant] = {}
        self.next_tokens: dict[str, tuple[dict[str, Any], int]] = {}
        self.app_buckets: dict[str, tuple[float, float]] = {}  # report type -> (tokens, at simulated seconds)
        # (seller, report type) -> (tokens, at simulated seconds)
        self.type_buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._ids = itertools.count(50_000_000_000 + self.rng.randrange(10**9))
        self.on_finished: Callable[[Report], None] = lambda report: None

    def app_allows(self, report_type: str) -> bool:
        """Take one request of the application-wide limit of ``report_type`` (``config.app_limits``)."""
        limit = self.config.app_limits.get(report_type)
        if limit is None:
            return True
        requests, per = limit
        with self.lock:
            now = self.clock.seconds()
            tokens, at = self.app_buckets.get(report_type, (float(requests), now))
            tokens = min(float(requests), tokens + (now - at) * requests / per)
            allowed = tokens >= 1.0
            self.app_buckets[report_type] = (tokens - 1.0 if allowed else tokens, now)
            return allowed

    def type_allows(self, seller_id: str, report_type: str) -> bool:
        """Take one request of the seller's own limit of ``report_type`` (``config.type_limits``)."""
        limit = self.config.type_limits.get(report_type)
        if limit is None:
            return True
        requests, per = limit
        with self.lock:
            now = self.clock.seconds()
            tokens, at = self.type_buckets.get((seller_id, report_type), (float(requests), now))
            tokens = min(float(requests), tokens + (now - at) * requests / per)
            allowed = tokens >= 1.0
            self.type_buckets[(seller_id, report_type)] = (tokens - 1.0 if allowed else tokens, now)
            return allowed

    def new_id(self) -> str:
        """A fresh numeric id, Amazon-style."""
        return str(next(self._ids))

    # --- tokens -------------------------------------------------------------------------------------

    def grant(self, seller_id: str | None, lifetime: float, *, scope: str | None = None,
              restricted: frozenset[tuple[str, str]] | None = None) -> str:  # fmt: skip
        """Mint an access token (``Atza|…``) or, with ``restricted``, a Restricted Data Token (``Atz.sprdt|…``)."""
        token = ("Atz.sprdt|" if restricted is not None else "Atza|") + secrets.token_urlsafe(120)
        with self.lock:
            self.grants[token] = Grant(seller_id, self.clock.seconds() + lifetime, scope, restricted)
        return token

    # --- reports ------------------------------------------------------------------------------------

    def create_report(self, seller_id: str, report_type: str, marketplace_ids: tuple[str, ...], *,
                      data_start: str | None = None, data_end: str | None = None,
                      schedule_id: str | None = None, at: float | None = None,
                      options: dict[str, str] | None = None) -> Report:  # fmt: skip
        """A new IN_QUEUE report (stuck IN_QUEUE or IN_PROGRESS when ``queued_reports``/``stuck_reports`` fires)."""
        with self.lock:
            report = Report(
                seller_id, self.new_id(), report_type, marketplace_ids,
                self.clock.seconds() if at is None else at, data_start=data_start, data_end=data_end,
                schedule_id=schedule_id, stuck=self.faults.take("stuck_reports"),
                queued=self.faults.take("queued_reports"), options=dict(options or {}),
            )  # fmt: skip
            self.reports[(seller_id, report.report_id)] = report
            self.active.add((seller_id, report.report_id))
            return report

    def finish(self, report: Report, status: str, spec: DocumentSpec | None = None) -> None:
        """End a report now with ``status``; a DONE report gets a document (``spec`` or the configured default)."""
        with self.lock:
            now = self.clock.seconds()
            if report.started is None:
                report.started = now
            report.status, report.ended = status, now
            self.active.discard((report.seller_id, report.report_id))
            if status == "DONE":
                spec = spec or DocumentSpec(
                    report_type=report.report_type,
                    size=self.config.document_bytes,
                    gzip=self.config.document_gzip,
                    seed=self.rng.randrange(2**31),
                )
                report.document_id = self.add_document(report, spec).document_id
            elif status == "FATAL" and self.config.fatal_error_documents and report.document_id is None:
                report.document_id = self.add_document(report, self.error_document(spec)).document_id
        self.on_finished(report)

    def error_document(self, spec: DocumentSpec | None = None) -> DocumentSpec:
        """The error document of a FATAL report: JSON holding ``errorDetails`` (``spec.text`` when given)."""
        if spec is not None and spec.text is not None:
            return spec
        reason = FATAL_REASONS[self.rng.randrange(len(FATAL_REASONS))]
        return DocumentSpec(report_type="ERROR_DOCUMENT", text=json.dumps({"errorDetails": reason}), restricted=False)

    def add_document(self, report: Report, spec: DocumentSpec) -> Document:
        """Attach a new document to a report."""
        document_id = f"amzn1.spdoc.1.4.na.{uuid.uuid4()}.T{self.rng.randrange(10**11)}.{self.rng.randrange(10**4)}"
        document = Document(report.seller_id, document_id, report.report_id, spec, report.marketplace_ids)
        with self.lock:
            self.documents[document_id] = document
        return document

    def _outcome(self) -> str:
        odds = self.config.outcomes
        weights = [max(0.0, odds.done), max(0.0, odds.cancelled), max(0.0, odds.fatal)]
        if sum(weights) <= 0:
            return "DONE"
        return self.rng.choices(FINAL_STATUSES, weights)[0]

    # --- schedules ----------------------------------------------------------------------------------

    def put_schedule(self, seller_id: str, report_type: str, marketplace_ids: tuple[str, ...], period: str,
                     next_at: float | None, options: dict[str, str]) -> Schedule:  # fmt: skip
        """Create a schedule, cancelling one with the same report type and marketplaces (as Amazon does).

        Without ``next_at`` the first report comes a period from now. A ``next_at`` in the past is moved on
        to the period's next future run: the runs it missed are not made up for.
        """
        with self.lock:
            for key, old in list(self.schedules.items()):
                if (
                    old.seller_id == seller_id
                    and old.report_type == report_type
                    and set(old.marketplace_ids) == set(marketplace_ids)
                ):
                    del self.schedules[key]
            now = self.clock.seconds()
            first, runs = (now, 1) if next_at is None else (next_at, 0)
            if first < now:
                runs = first_run_after(self.clock.at(first), period, self.clock.at(now))
            schedule = Schedule(seller_id, self.new_id(), report_type, marketplace_ids, period, first, options,
                                first=first)  # fmt: skip
            schedule.move_to(self.clock, runs)
            self.schedules[(seller_id, schedule.schedule_id)] = schedule
            return schedule

    # --- time ---------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Fire due schedules and move reports through their phases."""
        finished: list[Report] = []
        with self.lock:
            now = self.clock.seconds()
            for schedule in list(self.schedules.values()):
                fired = 0
                while schedule.next_at <= now and fired < 100:
                    self.create_report(schedule.seller_id, schedule.report_type, schedule.marketplace_ids,
                                       schedule_id=schedule.schedule_id, at=schedule.next_at)  # fmt: skip
                    schedule.move_to(self.clock, schedule.runs + 1)
                    fired += 1
            timing = self.config.outcomes
            for key in list(self.active):
                report = self.reports[key]
                if report.status == "IN_QUEUE" and not report.queued and now >= report.created + timing.queue_seconds:
                    report.status, report.started = "IN_PROGRESS", report.created + timing.queue_seconds
                started = report.started
                if (
                    report.status == "IN_PROGRESS"
                    and not report.stuck
                    and started is not None
                    and now >= started + timing.processing_seconds
                ):
                    # Taken out of the active set while still locked: a tick running at the same time (the
                    # ticker thread and every API call tick) must not finish it a second time.
                    self.active.discard(key)
                    finished.append(report)
        for report in finished:
            self.finish(report, self._outcome())

    def retained(self, report: Report) -> bool:
        """Whether Amazon still keeps ``report`` (created within the last 90 days)."""
        return report.created >= self.cutoff(RETENTION_DAYS)

    def cutoff(self, days: int) -> float:
        """Simulated seconds of ``days`` ago."""
        return self.clock.seconds_of(self.clock.now() - timedelta(days=days))
