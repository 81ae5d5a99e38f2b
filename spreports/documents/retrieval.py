"""The retrieval service: one report document from a request to its stored manifest, with every guarantee.

:meth:`DocumentRetrieval.run` is what the retrieval task calls. Around the streaming pipeline
(:func:`~spreports.documents.pipeline.retrieve_document`) it keeps

- the storage check: a stored manifest makes the run a no-op;
- the claim (:class:`~spreports.documents.claim.DocumentClaim`): unique to the run, renewed while the
  download runs; a claim held by another run is :class:`ClaimHeld`, which the caller waits on;
- the in-flight list (:class:`~spreports.documents.inflight.InFlight`): a document taken by a run is
  listed until it is stored or in the failure ledger, so that a lost run is queued again;
- a FATAL report's reason, its type's counter (:class:`~spreports.reports.fatal_ledger.FatalLedger`) and cooldown;
- the failure ledger (:class:`~spreports.reports.failure_ledger.FailureLedger`): :meth:`DocumentRetrieval.fail` puts a
  document that failed for good there, :meth:`~DocumentRetrieval.run` takes a stored one off it.

The result is a :class:`Retrieved`, kept typed to the end: the manifest it carries (with a FATAL
report's reason) is the one just written or found, never read back from the storage. Waiting and
retrying are the caller's (a Celery task's countdowns); this module knows nothing of them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis

from spreports.documents.claim import DocumentClaim, claim_owner
from spreports.documents.inflight import InFlight
from spreports.documents.pipeline import RetrievalOptions, RetrievalResult, TransferProgress, retrieve_document
from spreports.errors import ServiceUnavailable, TransientError
from spreports.reports.cooldowns import start_cooldown
from spreports.reports.failure_ledger import FailureLedger
from spreports.reports.fatal_ledger import FatalLedger
from spreports.reports.restatements import Restatements
from spreports.runtime import Runtime
from spreports.storage import Manifest
from spreports.task_arguments import DocumentRequest

log = logging.getLogger(__name__)


class ClaimHeld(Exception):
    """Another run holds the document's claim; it lapses within ``remaining`` s unless its holder renews it."""

    def __init__(self, remaining: float) -> None:
        super().__init__(f"the document is claimed by another run for {remaining:.0f} s more")
        self.remaining = remaining


class FatalUnrecorded(Exception):
    """A FATAL report's error document is stored but its counter and cooldown are not written (``error``):
    a later run finds it stored and writes them."""

    def __init__(self, error: TransientError) -> None:
        super().__init__(str(error))
        self.error = error


class ProgressHook(Protocol):
    """The download's progress hook (:data:`~spreports.documents.pipeline.Progress`) with its end."""

    def __call__(self, progress: TransferProgress) -> None:
        """One block more of the download."""

    def finish(self, bytes_in: int | None = None, bytes_out: int | None = None) -> None:
        """The download ended (stored with these sizes, or with an error when none are given)."""


class Counters(Protocol):
    """The fleet's counters the service writes (:class:`spreports.metrics.WorkerMetrics`)."""

    def count(self, name: str, label: str | None = None, amount: int = 1) -> None:
        """Add ``amount`` to the counter ``name`` (with its ``label``)."""

    def count_stored(self, seconds: float | None) -> None:
        """One document stored, in ``seconds``."""


@dataclass(frozen=True)
class Retrieved:
    """What a retrieval ended with: the stored document's manifest, as written or found."""

    request: DocumentRequest
    """The request, its report type filled in from the report when it was not given."""
    manifest: Manifest
    already_stored: bool = False
    """Stored by an earlier run: this one found it."""

    @property
    def error_reason(self) -> str | None:
        """A FATAL report's reason, as its error document gives it."""
        return self.manifest.error_reason

    @property
    def report_type(self) -> str | None:
        """The report type, from the request or else from the manifest."""
        return self.request.report_type or self.manifest.report_type

    def summary(self) -> dict[str, Any]:
        """The small JSON summary a task returns (never a URL); a FATAL report's names its reason."""
        summary = RetrievalResult(manifest=self.manifest, already_stored=self.already_stored).summary()
        if self.request.processing_status == "FATAL":
            summary.update(processing_status="FATAL", error_reason=self.error_reason)
        return summary


@dataclass(frozen=True)
class DocumentRetrieval:
    """The retrieval service of one process: its connections and settings, and the fleet's counters."""

    runtime: Runtime
    counters: Counters

    def run(
        self, request: DocumentRequest, *, run_id: str, progress: Callable[[DocumentRequest], ProgressHook]
    ) -> Retrieved:
        """Store the document (or find it stored), record a FATAL report, and take it off the failure ledger.

        ``run_id`` names the run (the task's id) in its claim and logs; ``progress`` builds the download's
        hook for the request as completed. Raises :class:`ClaimHeld` when another run holds the document,
        :class:`FatalUnrecorded` when a FATAL one is stored but not recorded, or the retrieval's error (the
        document then stays listed in flight: see :meth:`away` and :meth:`fail`).
        """
        retrieved = self._find_or_retrieve(request, run_id, progress)
        if request.processing_status == "FATAL":
            try:
                record_fatal(self.runtime.redis, retrieved)
            except TransientError as exc:
                raise FatalUnrecorded(exc) from None
        self._count_stored(retrieved)
        log.info(
            "stored document %s of seller %s at %s (report %s, %s; %s bytes in, %s out, %s s; task %s)",
            request.report_document_id, request.seller_id, retrieved.manifest.location, request.report_id or "?",
            retrieved.report_type or "type unknown", retrieved.manifest.bytes_in, retrieved.manifest.bytes_out,
            retrieved.manifest.timings.get("total_seconds"), run_id,
        )  # fmt: skip
        with contextlib.suppress(redis.RedisError, OSError):
            FailureLedger(self.runtime.redis).resolve(request.seller_id, request.report_document_id)
        return retrieved

    def away(self, request: DocumentRequest, countdown: float) -> None:
        """Keep the document listed while its run is away for ``countdown`` s, with the moment it is due back:
        should the broker lose the delayed run, the requeue task queues the document again soon after."""
        try:
            InFlight(self.runtime.redis).away(request, countdown)
        except (redis.RedisError, OSError) as exc:
            # The retry is queued all the same: only a broker loss of it would go unnoticed (the sweep remains).
            log.warning(
                "document %s of seller %s: could not list its wait in flight (%s)",
                request.report_document_id, request.seller_id, type(exc).__name__,
            )  # fmt: skip

    def fail(self, request: DocumentRequest, error: BaseException) -> None:
        """Put a document that failed for good in the ledger, where a person and the sweep can re-drive it."""
        self.counters.count("documents", "failed")
        try:
            entry = FailureLedger(self.runtime.redis).record(request, error)
        except (redis.RedisError, OSError) as exc:
            # Left in flight: the requeue task tries it again, so it is not lost while the ledger is unreachable.
            log.error(
                "document %s of seller %s failed for good (%s) and the failure ledger is unreachable (%s)",
                request.report_document_id, request.seller_id, type(error).__name__, type(exc).__name__,
            )  # fmt: skip
            return
        _unlist(
            InFlight(self.runtime.redis), request
        )  # in the ledger now: re-driven from there, not by the requeue task
        # One line, no traceback: what failed, whether it can pass, Amazon's words (with its request id), what next.
        log.error(
            "document %s of seller %s not stored (%s, %s): %s; in the failure ledger (`spreports reports failed`)",
            request.report_document_id, request.seller_id, type(error).__name__,
            "may pass: the sweep retries it" if entry.may_pass else "permanent: retrying will not help", entry.reason,
        )  # fmt: skip

    def _find_or_retrieve(
        self, request: DocumentRequest, run_id: str, progress: Callable[[DocumentRequest], ProgressHook]
    ) -> Retrieved:
        existing = self.runtime.storage.find(request.seller_id, request.report_document_id)
        if existing is not None:
            return Retrieved(request, existing, already_stored=True)
        claim = DocumentClaim(self.runtime.redis, request.seller_id, request.report_document_id,
                              owner=claim_owner(run_id), ttl=self.runtime.settings.documents.claim_ttl_seconds)  # fmt: skip
        if not claim.acquire():
            raise ClaimHeld(claim.remaining())
        with claim.kept():
            inflight = InFlight(self.runtime.redis)
            try:
                inflight.add(request)
            except (redis.RedisError, OSError) as exc:
                raise ServiceUnavailable(f"Redis failed while listing the download ({type(exc).__name__})") from None
            try:
                retrieved = self._retrieve(request, run_id, progress)
            except SystemExit:
                # The worker is stopping (its pool process was told to end; the download is abandoned and its
                # partial file removed). The broker hands the message back; should the worker be killed
                # before it does, the entry stays listed and, its claim released, is queued again.
                log.warning(
                    "document %s of seller %s: the worker is stopping; handed back for another worker",
                    request.report_document_id, request.seller_id,
                )  # fmt: skip
                raise
            # On an error the entry stays listed: the caller lists it as away (with its due moment) while it
            # waits, or takes it off as it goes into the failure ledger.
            _unlist(inflight, request)
            return retrieved

    def _retrieve(
        self, args: DocumentRequest, run_id: str, progress_for: Callable[[DocumentRequest], ProgressHook]
    ) -> Retrieved:
        client = self.runtime.client(args.seller_id)
        request, report, supersedes = args, None, None
        if args.report_id:
            # The report's metadata goes into the manifest (and names the report type when not given).
            found = client.get_report(args.report_id)
            report = found.model_dump(mode="json", by_alias=True)
            request = args.model_copy(update={"report_type": args.report_type or found.report_type})
            # A restated report's document is a new version of an earlier one, whoever queued its retrieval.
            supersedes = Restatements(self.runtime.redis).superseded(args.seller_id, args.report_id)

        def locate() -> Any:
            return client.get_report_document(args.report_document_id, report_type=request.report_type)

        progress = progress_for(request)
        log.info(
            "retrieving document %s of seller %s (report %s, %s; task %s)",
            request.report_document_id, request.seller_id, request.report_id or "?",
            request.report_type or "type unknown", run_id,
        )  # fmt: skip
        started = time.monotonic()
        try:
            result = retrieve_document(
                request,
                locate=locate,
                report=report,
                storage=self.runtime.storage,
                options=RetrievalOptions.from_settings(self.runtime.settings),
                session=self.runtime.session,
                progress=progress,
                # The claim was just taken, but a run that lost a race with a finishing one re-checks here.
                skip_existing=True,
                supersedes=supersedes,
            )
        except BaseException as exc:
            progress.finish()
            log.info(
                "document %s of seller %s (report %s, %s; task %s): retrieval ended with %s after %.1f s",
                request.report_document_id, request.seller_id, request.report_id or "?",
                request.report_type or "type unknown", run_id, type(exc).__name__, time.monotonic() - started,
            )  # fmt: skip
            raise
        progress.finish(result.manifest.bytes_in, result.manifest.bytes_out)
        return Retrieved(request, result.manifest, already_stored=result.already_stored)

    def _count_stored(self, retrieved: Retrieved) -> None:
        if retrieved.already_stored:
            self.counters.count("documents", "already_stored")
            return
        seconds = retrieved.manifest.timings.get("total_seconds")
        self.counters.count_stored(None if seconds is None else float(seconds))


def record_fatal(client: redis.Redis, retrieved: Retrieved) -> None:
    """Count a FATAL report in its type's counter and start its cooldown, unless the run that stored it did.

    A run that stored it while Redis failed left both unwritten: the next run that finds it stored writes them.
    """
    request = retrieved.request
    ledger = FatalLedger(client)
    if retrieved.already_stored and (not request.report_id or ledger.recorded(request.seller_id, request.report_id)):
        return  # counted and cooled down by the run that stored it
    report_type = retrieved.report_type
    # The cooldown first, the ledger last: its entry for the report tells a later run that both are written.
    until = start_cooldown(client, request.seller_id, report_type, report_id=request.report_id) if report_type else None
    ledger.record(request.seller_id, request.report_id, report_type, retrieved.error_reason)
    log.warning(
        "report %s (%s) of seller %s is FATAL: %s%s",
        request.report_id or "?", report_type or "type unknown", request.seller_id,
        retrieved.error_reason or "(no reason given)",
        f"; requests of it wait until {until.isoformat()}" if until else "",
    )  # fmt: skip


def _unlist(inflight: InFlight, request: DocumentRequest) -> None:
    # Best effort: an entry left behind without a claim is found stored, or queued once more.
    with contextlib.suppress(redis.RedisError, OSError):
        inflight.remove(request)


__all__ = ["ClaimHeld", "Counters", "DocumentRetrieval", "FatalUnrecorded", "ProgressHook", "Retrieved", "record_fatal"]
