"""Queueing the product's tasks from any Python program: ``spreports.enqueue_document`` and ``request_report``.

A producer process holds one Celery app (and so one broker connection pool) per broker, built on its
first call and reused by every later one: a web application that enqueues thousands of downloads
keeps a constant handful of connections. Without ``settings=``, the settings are loaded once per
process.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from spreports import names
from spreports.contracts import DocumentRequest, ReportRequest
from spreports.errors import InvalidRequest
from spreports.settings import Settings, load_settings

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult

_lock = threading.Lock()
_default_settings: Settings | None = None
_apps: dict[tuple[str | None, str | None, str], Celery] = {}


def enqueue_document(
    report_document_id: str,
    *,
    seller_id: str | None = None,
    report_id: str | None = None,
    report_type: str | None = None,
    processing_status: str = "DONE",
    settings: Settings | None = None,
) -> AsyncResult:  # type: ignore[type-arg]
    """Queue the retrieval of one report document (task ``spreports.retrieve_report_document``).

    ``seller_id`` defaults to ``SPREPORTS_SELLER_ID``; ``settings`` to the process's settings (loaded
    once). Returns the Celery ``AsyncResult``; its result is the stored document's summary (location,
    sizes, sha256).
    """
    settings = settings or _settings()
    seller = seller_id or settings.seller_id
    if not seller:
        raise InvalidRequest("no seller_id given and SPREPORTS_SELLER_ID is not set")
    request = DocumentRequest.parse(
        seller_id=seller,
        report_document_id=report_document_id,
        report_id=report_id,
        report_type=report_type,
        processing_status=processing_status,
    )
    return app_for(settings).send_task(
        names.RETRIEVE_REPORT_DOCUMENT, kwargs=request.task_kwargs(), queue=names.DOCUMENTS_QUEUE
    )


def request_report(
    report_type: str,
    *,
    seller_id: str | None = None,
    marketplace_ids: list[str] | None = None,
    data_start_time: str | None = None,
    data_end_time: str | None = None,
    report_options: dict[str, str] | None = None,
    settings: Settings | None = None,
) -> AsyncResult:  # type: ignore[type-arg]
    """Queue a createReport (task ``spreports.request_report``); its result holds the new ``report_id``.

    The document follows by itself: Amazon's notification reaches the relay, which queues its retrieval.
    ``marketplace_ids`` default to the seller's in ``SPREPORTS_SELLERS_FILE``; times are ISO 8601 strings.
    """
    request = ReportRequest.parse(
        report_type=report_type,
        seller_id=seller_id,
        marketplace_ids=marketplace_ids or [],
        data_start_time=data_start_time,
        data_end_time=data_end_time,
        report_options=report_options,
    )
    return app_for(settings or _settings()).send_task(
        names.REQUEST_REPORT, kwargs=request.task_kwargs(), queue=names.CONTROL_QUEUE
    )


def app_for(settings: Settings) -> Celery:
    """The process's Celery app for the broker these settings name (one per broker, built once)."""
    # Keyed by what the app's connections depend on, so equal settings share one pool.
    key = (settings.broker_url, settings.result_backend, str(settings.data_dir))
    with _lock:
        app = _apps.get(key)
        if app is None:
            # Imported here so that producers load Celery only when they first send.
            from spreports.workers.app import create_app

            app = _apps[key] = create_app(settings)
        return app


def _settings() -> Settings:
    global _default_settings
    with _lock:
        if _default_settings is None:
            _default_settings = load_settings()
        return _default_settings
