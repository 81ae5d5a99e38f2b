"""``spreports reports ...``: work with reports and their documents from the shell."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from spreports import names
from spreports.contracts import DocumentRequest
from spreports.errors import InvalidRequest, ServiceUnavailable
from spreports.settings import Settings
from spreports.workers.cli.common import UserError, check_redis, check_storage, command_settings


@click.group("reports")
def reports() -> None:
    """Reports and their documents."""


@reports.command("download")
@click.option("--document", "document_id", help="The reportDocumentId to retrieve.")
@click.option("--report", "report_id", help="A reportId: its document is retrieved (getReport finds it).")
@click.option("--seller", "seller_id", help="The seller (default: SPREPORTS_SELLER_ID).")
@click.option("--local", is_flag=True, help="Run the pipeline in this process instead of on a worker.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds to wait for a worker's result.")
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
    from spreports.workers.embedded_redis import broker_url

    return SpapiClient.for_seller(settings, seller, redis=connect(broker_url(settings)))


def _run_on_worker(settings: Settings, request: DocumentRequest, timeout: float) -> dict[str, Any]:
    from celery.exceptions import TimeoutError as CeleryTimeout

    from spreports.workers.producers import app_for

    result = app_for(settings).send_task(
        names.RETRIEVE_REPORT_DOCUMENT, kwargs=request.task_kwargs(), queue=names.DOCUMENTS_QUEUE
    )
    click.echo(f"queued task {result.id}; waiting for a worker (Ctrl-C stops waiting, not the task)", err=True)
    try:
        summary: dict[str, Any] = result.get(timeout=timeout)
    except CeleryTimeout:
        raise ServiceUnavailable(
            f"no result within {timeout:.0f} s; the task {result.id} is still queued or running"
        ) from None
    return summary


def _run_local(settings: Settings, request: DocumentRequest, report: dict[str, Any] | None) -> dict[str, Any]:
    from spreports.documents import RetrievalOptions, prepare_process, retrieve_document
    from spreports.storage import open_storage

    prepare_process()
    client = _client(settings, request.seller_id)

    def locate() -> Any:
        return client.get_report_document(request.report_document_id, report_type=request.report_type)

    with _progress() as progress:
        result = retrieve_document(
            request,
            locate=locate,
            report=report,
            storage=open_storage(settings),
            options=RetrievalOptions.from_settings(settings),
            progress=progress,
        )
    return result.summary()


@contextmanager
def _progress() -> Iterator[Any]:
    """A rich progress bar of the bytes received when stdout is a terminal; else nothing."""
    if not sys.stdout.isatty():
        yield None
        return
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn()) as bar:
        task = bar.add_task("downloading", total=None)

        def update(received: int, total: int | None) -> None:
            bar.update(task, completed=received, total=total)

        yield update


@reports.command("request")
@click.option("--type", "report_type", required=True, help="The reportType, e.g. GET_MERCHANT_LISTINGS_ALL_DATA.")
@click.option("--marketplace", "marketplace_ids", multiple=True, help="A marketplace id (repeatable).")
@click.option("--seller", "seller_id", help="The seller (default: SPREPORTS_SELLER_ID).")
@click.option("--start", "data_start_time", help="dataStartTime, ISO 8601.")
@click.option("--end", "data_end_time", help="dataEndTime, ISO 8601.")
@click.option("--timeout", default=120.0, show_default=True, help="Seconds to wait for the report id.")
def request(
    report_type: str,
    marketplace_ids: tuple[str, ...],
    seller_id: str | None,
    data_start_time: str | None,
    data_end_time: str | None,
    timeout: float,
) -> None:
    """Request a report (createReport through a worker); its document follows through the relay."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    from spreports.workers.producers import request_report

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
    try:
        summary: dict[str, str] = result.get(timeout=timeout)
    except CeleryTimeout:
        raise UserError(f"no worker answered within {timeout:.0f} s (task {result.id} stays queued)") from None
    click.echo(json.dumps(summary, indent=2, sort_keys=True))


@reports.command("failed")
@click.option("--seller", "seller_id", help="Only this seller's documents.")
def failed(seller_id: str | None) -> None:
    """List the documents that failed for good (the failure ledger), oldest first."""
    from spreports.connection import connect
    from spreports.ledger import FailureLedger

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
    from spreports.ledger import FailureLedger
    from spreports.workers.producers import app_for

    settings = command_settings()
    entries = FailureLedger(connect(check_redis(settings))).entries(seller_id)
    app = app_for(settings)
    for entry in entries:
        app.send_task(names.RETRIEVE_REPORT_DOCUMENT, kwargs=entry.request.task_kwargs(), queue=names.DOCUMENTS_QUEUE)
    click.echo(f"queued {len(entries)} document(s) of the failure ledger again")
