"""``spreports reports ...``: work with reports and their documents from the shell."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from itertools import islice
from typing import Any

import click

from spreports.errors import InvalidRequest, ServiceUnavailable
from spreports.settings import Settings
from spreports.task_arguments import DocumentRequest
from spreports.tasks import signatures
from spreports.workers.cli.common import UserError, check_redis, check_storage, command_settings
from spreports.workers.cli.values import MAX_WAIT_SECONDS, BoundedFloat, Moment

SECONDS = BoundedFloat(0, MAX_WAIT_SECONDS)


@click.group("reports")
def reports() -> None:
    """Reports and their documents."""


@reports.command("download")
@click.option("--document", "document_id", help="The reportDocumentId to retrieve.")
@click.option("--report", "report_id", help="A reportId: its document is retrieved (getReport finds it).")
@click.option("--seller", "seller_id", help="The seller (default: SPREPORTS_SELLER_ID).")
@click.option("--local", is_flag=True, help="Run the pipeline in this process instead of on a worker.")
@click.option(
    "--timeout", default=3600.0, show_default=True, type=SECONDS, help="Seconds to wait for a worker's result."
)
def download(
    document_id: str | None, report_id: str | None, seller_id: str | None, local: bool, timeout: float
) -> None:
    """Retrieve one document into the storage and print where it went."""
    if (document_id is None) == (report_id is None):
        raise UserError("give exactly one of --document ID or --report ID")
    settings = command_settings()
    seller = seller_id or settings.seller_id
    if not seller:
        raise UserError("no --seller given and SPREPORTS_SELLER_ID is not set")
    # Redis holds the rate limits and tokens (and the queue, on a worker); the storage is written here
    # with --local: both are proved before any SP-API call is spent.
    check_redis(settings)
    if local:
        check_storage(settings)
    request, report = _request(settings, seller, document_id, report_id)
    summary = _run_local(settings, request, report) if local else _run_on_worker(settings, request, timeout)
    click.echo(f"stored at {summary['location']}")
    click.echo(json.dumps(summary, indent=2, sort_keys=True))


def _request(
    settings: Settings, seller: str, document_id: str | None, report_id: str | None
) -> tuple[DocumentRequest, dict[str, Any] | None]:
    """The retrieval's arguments and, given a report id, the report's metadata (getReport)."""
    if report_id is None:
        return DocumentRequest.parse(seller_id=seller, report_document_id=document_id), None
    report = _client(settings, seller).get_report(report_id)
    if not report.report_document_id:
        raise InvalidRequest(f"report {report_id} has no document (processingStatus {report.processing_status})")
    request = DocumentRequest.parse(
        seller_id=seller,
        report_document_id=report.report_document_id,
        report_id=report_id,
        report_type=report.report_type,
        processing_status=report.processing_status,
    )
    return request, report.model_dump(mode="json", by_alias=True)


def _client(settings: Settings, seller: str) -> Any:
    from spreports.connection import connect
    from spreports.spapi import SpapiClient
    from spreports.workers.embedded_redis import state_url

    return SpapiClient.for_seller(settings, seller, redis=connect(state_url(settings)))


def _run_on_worker(settings: Settings, request: DocumentRequest, timeout: float) -> dict[str, Any]:
    from celery.exceptions import TimeoutError as CeleryTimeout

    from spreports.tasks.progress import PROGRESS_STATE
    from spreports.workers.producers import app_for

    result = signatures.retrieval(app_for(settings), request).apply_async()
    click.echo(f"queued task {result.id}; waiting for a worker (Ctrl-C stops waiting, not the task)", err=True)
    deadline = time.monotonic() + timeout
    with _progress() as show:
        # The worker publishes the download's progress as the task's state (spreports.tasks.progress).
        while show is not None and not result.ready() and time.monotonic() < deadline:
            info = result.info if result.state == PROGRESS_STATE else None
            if isinstance(info, dict):
                show(int(info.get("bytes_in") or 0), info.get("expected_bytes_in"))
            time.sleep(0.5)
        try:
            summary: dict[str, Any] = result.get(timeout=max(deadline - time.monotonic(), 0.1))
        except CeleryTimeout:
            raise ServiceUnavailable(
                f"no result within {timeout:.0f} s; the task {result.id} is still queued or running"
            ) from None
        if show is not None:
            show(int(summary.get("bytes_in") or 0), int(summary.get("bytes_in") or 0))
    return summary


def _run_local(settings: Settings, request: DocumentRequest, report: dict[str, Any] | None) -> dict[str, Any]:
    from spreports.documents import RetrievalOptions, prepare_process, retrieve_document
    from spreports.storage import open_storage

    prepare_process()
    client = _client(settings, request.seller_id)

    def locate() -> Any:
        return client.get_report_document(request.report_document_id, report_type=request.report_type)

    with _progress() as show:
        result = retrieve_document(
            request,
            locate=locate,
            report=report,
            storage=open_storage(settings),
            options=RetrievalOptions.from_settings(settings),
            progress=None if show is None else lambda p: show(p.bytes_in, p.expected_bytes_in),
        )
    return result.summary()


@contextmanager
def _progress() -> Iterator[Callable[[int, int | None], None] | None]:
    """A rich progress bar of the bytes received (and the Content-Length when known) when stderr is a
    terminal; else None (the output stays one line and the summary)."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with Progress(
        *Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), console=Console(stderr=True)
    ) as bar:
        task = bar.add_task("downloading", total=None)

        def update(received: int, total: int | None) -> None:
            bar.update(task, completed=received, total=total)

        yield update


@reports.command("request")
@click.option("--type", "report_type", required=True, help="The reportType, e.g. GET_MERCHANT_LISTINGS_ALL_DATA.")
@click.option("-m", "--marketplace", "marketplace_ids", multiple=True, help="A marketplace id (repeatable).")
@click.option("--seller", "seller_id", help="The seller (default: SPREPORTS_SELLER_ID).")
@click.option("--start", "data_start_time", type=Moment(), help="dataStartTime, ISO 8601 with its offset.")
@click.option("--end", "data_end_time", type=Moment(), help="dataEndTime, ISO 8601 with its offset.")
@click.option("--wait", is_flag=True, help="Wait until the document is stored and print its summary.")
@click.option("--timeout", type=SECONDS, help="Seconds to wait (default: 120 for the report id, 3600 with --wait).")
def request(
    report_type: str,
    marketplace_ids: tuple[str, ...],
    seller_id: str | None,
    data_start_time: datetime | None,
    data_end_time: datetime | None,
    wait: bool,
    timeout: float | None,
) -> None:
    """Request a report on a worker (an identical one in flight or fresh is reused); a worker stores its document."""
    from spreports.workers.producers import request_report, requested_report

    settings = command_settings()
    check_redis(settings)
    result = request_report(
        report_type,
        seller_id=seller_id,
        marketplace_ids=list(marketplace_ids),
        data_start_time=data_start_time,
        data_end_time=data_end_time,
        settings=settings,
    )
    from celery.exceptions import TimeoutError as CeleryTimeout

    limit = timeout or (3600.0 if wait else 120.0)
    try:
        report = requested_report(result, limit)
    except CeleryTimeout:
        raise UserError(f"no worker answered within {limit:.0f} s (task {result.id} goes on)") from None
    click.echo(json.dumps(report, indent=2, sort_keys=True))
    if not wait:
        return
    click.echo(
        f"waiting for report {report['report_id']} and its document (Ctrl-C stops waiting, not the task)", err=True
    )
    summary: dict[str, Any] = _result_of(result, limit, "the document was not stored")
    click.echo(f"stored at {summary['location']}")
    click.echo(json.dumps(summary, indent=2, sort_keys=True))


def _result_of(result: Any, timeout: float, what: str) -> Any:
    from celery.exceptions import TimeoutError as CeleryTimeout

    try:
        return result.get(timeout=timeout)
    except CeleryTimeout:
        raise UserError(f"{what} within {timeout:.0f} s (task {result.id} goes on)") from None


STATUSES = ("IN_QUEUE", "IN_PROGRESS", "DONE", "CANCELLED", "FATAL")


@reports.command("list")
@click.option("--type", "report_types", multiple=True, help="A reportType (repeatable; default: the configured ones).")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES), help="Only this status (repeatable).")
@click.option("--seller", "seller_id", help="The seller (default: SPREPORTS_SELLER_ID).")
@click.option(
    "--days",
    default=7.0,
    show_default=True,
    type=BoundedFloat(0, 90, inclusive=True),
    help="Reports created within this many days (at most 90).",
)
@click.option(
    "--limit",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="At most this many reports (100 a getReports call).",
)
def list_reports(
    report_types: tuple[str, ...], statuses: tuple[str, ...], seller_id: str | None, days: float, limit: int
) -> None:
    """List Amazon's reports (getReports), newest first: created, id, type, status, data window, document."""
    from datetime import UTC, timedelta

    settings = command_settings()
    seller = seller_id or settings.seller_id
    if not seller:
        raise UserError("no --seller given and SPREPORTS_SELLER_ID is not set")
    types = list(report_types) or _configured_types(settings)
    if not types:
        raise UserError("give --type: no report types are configured (SPREPORTS_SQS__REPORT_TYPES, the schedules file)")
    check_redis(settings)
    since = datetime.now(UTC) - timedelta(days=days)
    client = _client(settings, seller)
    found: list[Any] = []
    for start in range(0, len(types), 10):  # getReports takes at most 10 types a call
        listed = client.get_reports(
            report_types=types[start : start + 10],
            processing_statuses=list(statuses) or None,
            created_since=since,
            page_size=min(limit, 100),
        )
        # islice stops at the limit before the listing asks for a page that would not be read.
        found.extend(islice(listed, limit))
    found.sort(key=lambda report: report.created_time, reverse=True)  # newest first across the groups
    shown = 0
    for report in found[:limit]:
        window = f"{_when(report.data_start_time)}..{_when(report.data_end_time)}"
        click.echo(
            f"{_when(report.created_time)}\t{report.report_id}\t{report.report_type}\t"
            f"{report.processing_status}\t{window}\t{report.report_document_id or '-'}"
        )
        shown += 1
    click.echo(f"{shown} report(s)", err=True)


def _when(moment: Any) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%dT%H:%M:%SZ}"


def _configured_types(settings: Settings) -> list[str]:
    types = set(settings.sqs.report_types)
    if settings.schedules_file is not None:
        from spreports.schedules import read_schedules_file

        types.update(schedule.report_type for schedule in read_schedules_file(settings.schedules_file))
    return sorted(types)


@reports.command("failed")
@click.option("--seller", "seller_id", help="Only this seller's documents.")
def failed(seller_id: str | None) -> None:
    """List the documents that failed for good (the failure ledger), oldest first."""
    from spreports.connection import connect
    from spreports.reports.failure_ledger import FailureLedger

    entries = FailureLedger(connect(check_redis(command_settings()))).entries(seller_id)
    for entry in entries:
        request = entry.request
        click.echo(
            f"{entry.failed_at:%Y-%m-%dT%H:%M:%SZ}\t{request.seller_id}\t{request.report_document_id}\t"
            f"{request.report_type or '-'}\t{entry.kind}\t{entry.reason}"
        )
    click.echo(f"{len(entries)} document(s) failed for good", err=True)


@reports.command("retry-failed")
@click.option("--seller", "seller_id", help="Only this seller's documents.")
def retry_failed(seller_id: str | None) -> None:
    """Queue every document of the failure ledger again (an entry goes once its document is stored)."""
    from spreports.connection import connect
    from spreports.reports.failure_ledger import FailureLedger
    from spreports.workers.producers import app_for

    settings = command_settings()
    entries = FailureLedger(connect(check_redis(settings))).entries(seller_id)
    app = app_for(settings)
    for entry in entries:
        signatures.retrieval(app, entry.request).apply_async()
    click.echo(f"queued {len(entries)} document(s) of the failure ledger again")


@reports.command("backfill")
@click.option("--type", "report_type", required=True, help="The reportType to backfill.")
@click.option(
    "--from",
    "start",
    required=True,
    type=Moment(days=True),
    help="The first day (YYYY-MM-DD, UTC) or an ISO 8601 date-time with its offset.",
)
@click.option(
    "--to",
    "end",
    required=True,
    type=Moment(days=True),
    help="The last day, included (YYYY-MM-DD), or an ISO 8601 date-time with its offset.",
)
@click.option("--seller", "seller_id", help="The seller (default: SPREPORTS_SELLER_ID).")
@click.option("-m", "--marketplace", "marketplace_ids", multiple=True, help="A marketplace id (repeatable).")
@click.option("--parallel", default=1, show_default=True, type=click.IntRange(1, 15), help="Windows at Amazon at once.")
@click.option("--no-wait", is_flag=True, help="Queue the backfill and return.")
@click.option(
    "--timeout", default=24 * 3600.0, show_default=True, type=SECONDS, help="Seconds to wait for the whole backfill."
)
@click.option("--yes", is_flag=True, help="Queue more windows than SPREPORTS_REQUESTS__BACKFILL_MAX_WINDOWS allows.")
def backfill(
    report_type: str,
    start: date | datetime,
    end: date | datetime,
    seller_id: str | None,
    marketplace_ids: tuple[str, ...],
    parallel: int,
    no_wait: bool,
    timeout: float,
    yes: bool,
) -> None:
    """Request and store a date range in windows no longer than the type allows; run it again to resume.

    While another run drives the same backfill, this one follows it (it requests nothing) and prints the
    same summary; a run late for its next round is taken over.
    """
    from spreports.workers.producers import app_for, backfill_arguments

    settings = command_settings()
    args = backfill_arguments(report_type, start, end, seller_id=seller_id,
                              marketplace_ids=list(marketplace_ids), parallel=parallel)  # fmt: skip
    plan = _backfill_plan(settings, args)
    total, allowed = len(plan.windows), settings.requests.backfill_max_windows
    if total > allowed and not yes:
        raise UserError(
            f"the backfill is {total} windows of {report_type}, more than SPREPORTS_REQUESTS__BACKFILL_MAX_WINDOWS "
            f"({allowed}) allows: check --from and --to, or add --yes to queue them all"
        )
    redis_url = check_redis(settings)
    progress = _backfill_progress(redis_url, plan)
    driving = _driving_run(redis_url, settings, progress)
    result = signatures.backfill(app_for(settings), args).apply_async()
    click.echo(f"backfill {progress.plan.plan_id}: {total} window(s); task {result.id}", err=True)
    if driving is not None:
        click.echo(f"run {driving} already drives this backfill: task {result.id} follows it", err=True)
    if no_wait:
        return
    _show_progress(result, progress, timeout)
    summary = _result_of(result, 5.0, "the backfill's result was not available")
    if summary.get("took_over_from"):
        click.echo(
            f"run {summary['driven_by']} took over from run {summary['took_over_from']}, which had stopped", err=True
        )
    if summary.get("driven_by") not in (None, result.id):
        click.echo(f"task {result.id} followed run {summary['driven_by']}, which requested the windows", err=True)
    click.echo(json.dumps(summary, indent=2, sort_keys=True))


def _driving_run(redis_url: str, settings: Settings, progress: Any) -> str | None:
    """The run driving the backfill now (its lease in force), if any."""
    from datetime import UTC, datetime, timedelta

    from spreports.connection import connect
    from spreports.reports.backfill_runs import RunLease

    grace = timedelta(seconds=settings.requests.backfill_takeover_seconds)
    lease = RunLease(connect(redis_url), progress.plan.plan_id, grace=grace).current()
    if lease is None or lease.overdue(datetime.now(UTC), grace) or progress.summary()["finished"]:
        return None
    return lease.run_id


def _backfill_plan(settings: Settings, args: Any) -> Any:
    """The backfill's plan; an empty range fails here, before anything is started or queued."""
    from spreports.reports.backfill_runs import plan_of

    plan = plan_of(settings, args)
    plan.windows  # noqa: B018 - an empty range raises
    return plan


def _backfill_progress(redis_url: str, plan: Any) -> Any:
    from spreports.connection import connect
    from spreports.reports.backfill import BackfillProgress

    return BackfillProgress(connect(redis_url), plan)


def _show_progress(result: Any, progress: Any, timeout: float) -> None:
    """Follow the backfill's progress in Redis until its task ends: a bar on a terminal, else a line per change."""
    import time

    deadline = time.monotonic() + timeout
    with _backfill_bar(len(progress.plan.windows)) as show:
        while not result.ready():
            if time.monotonic() > deadline:
                raise UserError(f"the backfill did not finish within {timeout:.0f} s (task {result.id} goes on)")
            show(progress.summary())
            time.sleep(1.0)
        show(progress.summary())


@contextmanager
def _backfill_bar(total: int) -> Iterator[Any]:
    def line(summary: dict[str, Any]) -> str:
        return (
            f"{summary['stored']}/{total} stored, {summary['requested']} at Amazon, "
            f"{summary['retrieving']} retrieving, {summary['cancelled']} cancelled, {summary['fatal']} fatal"
        )

    if not sys.stderr.isatty():
        last: list[str] = []

        def echo(summary: dict[str, Any]) -> None:
            text = line(summary)
            if last[-1:] != [text]:
                click.echo(text, err=True)
                last.append(text)

        yield echo
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*Progress.get_default_columns(), console=Console(stderr=True)) as bar:
        task = bar.add_task("windows", total=total)

        def update(summary: dict[str, Any]) -> None:
            finished = summary["stored"] + summary["cancelled"] + summary["fatal"]
            bar.update(task, completed=finished, description=line(summary))

        yield update
