"""spreports: Amazon SP-API reports, scheduled and retrieved into your own storage by a Celery fleet."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult

    from spreports.settings import Settings

__version__ = "0.1.0"


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

    ``seller_id`` defaults to ``SPREPORTS_SELLER_ID``; ``settings`` to :func:`load_settings`. Returns
    the Celery ``AsyncResult``; its result is the stored document's summary (location, sizes, sha256).
    """
    from spreports import names
    from spreports.settings import load_settings

    settings = settings or load_settings()
    seller = seller_id or settings.seller_id
    if not seller:
        from spreports.errors import InvalidRequest

        raise InvalidRequest("no seller_id given and SPREPORTS_SELLER_ID is not set")
    app = _app_for(settings)
    kwargs = {
        "seller_id": seller,
        "report_document_id": report_document_id,
        "report_id": report_id,
        "report_type": report_type,
        "processing_status": processing_status,
    }
    return app.send_task(names.RETRIEVE_REPORT_DOCUMENT, kwargs=kwargs, queue=names.DOCUMENTS_QUEUE)


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
    from spreports import names
    from spreports.settings import load_settings

    settings = settings or load_settings()
    kwargs = {
        "report_type": report_type,
        "seller_id": seller_id,
        "marketplace_ids": marketplace_ids or [],
        "data_start_time": data_start_time,
        "data_end_time": data_end_time,
        "report_options": report_options,
    }
    return _app_for(settings).send_task(names.REQUEST_REPORT, kwargs=kwargs, queue=names.CONTROL_QUEUE)


def _app_for(settings: Settings) -> Celery:
    # Imported here so that `import spreports` never imports Celery.
    from workers.app import create_app

    # Settings hold lists, so they are not hashable: cache by identity (keeping the object alive).
    cached = _apps.get(id(settings))
    if cached is None or cached[0] is not settings:
        cached = _apps[id(settings)] = (settings, create_app(settings))
    return cached[1]


_apps: dict[int, tuple[Settings, Celery]] = {}
