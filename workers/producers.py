"""Queueing the product's tasks from any Python program: ``spreports.enqueue_document``, ``request_report``
and ``backfill_reports``.

A producer process holds one Celery app (and so one broker connection pool) per broker, built on its
first call and reused by every later one: a web application that enqueues thousands of downloads
keeps a constant handful of connections. Without ``settings=``, the settings are loaded once per
process. Equal settings share one app whichever object carries them; threads share it too.

A producer fails fast: with Redis down, a call raises :class:`~spreports.errors.RedisUnavailable` (one
line naming the host, never a password) within a few seconds, instead of Celery's twenty reconnections.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

# Celery rebuilds a task's exception only from a module already imported: spreports.errors, imported
# here, holds the request's own (ReportCancelled, ReportFatal, ...) that a result's .get() re-raises.
from spreports.errors import InvalidRequest, RedisUnavailable, ServiceUnavailable
from spreports.settings import Settings, load_settings
from spreports.task_arguments import BackfillRequest, DocumentRequest, ReportRequest
from spreports.tasks import signatures

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult

#: How a producer's app talks to a Redis that does not answer: a few quick attempts, then an error.
#: (Celery's result backend otherwise reconnects 20 times a second apart before it gives up.)
PRODUCER_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
PRODUCER_CONNECT_TIMEOUT = 2.0

_lock = threading.Lock()
_default_settings: Settings | None = None
_apps: dict[tuple[str | None, str | None, str | None, Path], Celery] = {}


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
    app = app_for(settings)
    with _redis_errors(app):
        return signatures.retrieval(app, request).apply_async()


def request_report(
    report_type: str,
    *,
    seller_id: str | None = None,
    marketplace_ids: list[str] | None = None,
    data_start_time: str | datetime | None = None,
    data_end_time: str | datetime | None = None,
    report_options: dict[str, str] | None = None,
    settings: Settings | None = None,
) -> AsyncResult:  # type: ignore[type-arg]
    """Request a report and have its document stored; the result resolves to the document's summary.

    Sends ``spreports.request_report`` (createReport, or an identical report in flight or fresh
    reused) chained to ``spreports.follow_report`` (getReport on growing countdowns, then the
    retrieval). ``.get()`` returns the stored document's summary (location, sha256, sizes) or raises
    :class:`~spreports.errors.ReportCancelled` / :class:`~spreports.errors.ReportFatal`;
    ``.parent.get()`` returns the report's ids as soon as it is requested. ``marketplace_ids`` default
    to the seller's in ``SPREPORTS_SELLERS_FILE``; times are datetimes or ISO 8601 strings.
    """
    request = ReportRequest.parse(
        report_type=report_type,
        seller_id=seller_id,
        marketplace_ids=marketplace_ids or [],
        data_start_time=data_start_time,
        data_end_time=data_end_time,
        report_options=report_options,
    )
    # A request Amazon's rules forbid is refused here, in one line, before a task is even sent (the task
    # checks again once it knows the seller's default marketplaces).
    from spreports.reports.obtain import refuse_broken_rules  # the SP-API models: loaded when needed

    refuse_broken_rules(request.report_type, request.marketplace_ids)
    app = app_for(settings or _settings())
    with _redis_errors(app):
        return signatures.request_then_follow(app, request).apply_async()


def requested_report(result: AsyncResult, timeout: float | None = None) -> dict[str, str]:  # type: ignore[type-arg]
    """The report's ids of a :func:`request_report` result, as soon as it is requested (before its document).

    ``{"seller_id", "report_id", "report_type", "reused"}``; ``reused`` is ``new``, ``in-flight`` or ``done``.
    """
    parent = result.parent
    if not isinstance(parent, type(result)):
        raise InvalidRequest("not the result of spreports.request_report(...)")
    with _redis_errors(result.app):
        report: dict[str, str] = parent.get(timeout=timeout)
    return report


def backfill_reports(
    report_type: str,
    start: date | datetime,
    end: date | datetime,
    *,
    seller_id: str | None = None,
    marketplace_ids: list[str] | None = None,
    report_options: dict[str, str] | None = None,
    parallel: int = 1,
    settings: Settings | None = None,
) -> AsyncResult:  # type: ignore[type-arg]
    """Backfill ``report_type`` from ``start`` to ``end`` in windows (task ``spreports.backfill_reports``).

    A date ``start`` means its first instant, a date ``end`` its last (the whole day is included); an
    end past today's start (UTC) is cut there, as Amazon refuses data windows in the future. The same
    arguments continue the same backfill (while one run of it is alive, another only follows it: the
    summary's ``driven_by`` names the run that requested the windows). The result resolves to the backfill's summary;
    :func:`backfill_arguments` gives the task's arguments without sending it.
    """
    args = backfill_arguments(report_type, start, end, seller_id=seller_id, marketplace_ids=marketplace_ids,
                              report_options=report_options, parallel=parallel)  # fmt: skip
    app = app_for(settings or _settings())
    with _redis_errors(app):
        return signatures.backfill(app, args).apply_async()


def backfill_arguments(
    report_type: str,
    start: date | datetime,
    end: date | datetime,
    *,
    seller_id: str | None = None,
    marketplace_ids: list[str] | None = None,
    report_options: dict[str, str] | None = None,
    parallel: int = 1,
    now: datetime | None = None,
) -> BackfillRequest:
    """The backfill task's arguments for a date range (see :func:`backfill_reports`)."""
    today = (now or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    first = _instant(start)
    last = _instant(end) if isinstance(end, datetime) else _instant(end) + timedelta(days=1)
    return BackfillRequest.parse(
        report_type=report_type,
        data_start_time=first,
        data_end_time=min(last, today),
        seller_id=seller_id,
        marketplace_ids=marketplace_ids or [],
        report_options=report_options,
        parallel=parallel,
    )


def _instant(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def app_for(settings: Settings) -> Celery:
    """The process's Celery app for the broker these settings name (one per broker, built once, thread-safe).

    Every producer call of the process goes through here, so the process holds one app, and so one
    broker connection pool and one result subscription, per broker, however many calls it makes.
    """
    key = _app_key(settings)
    app = _apps.get(key)
    if app is not None:
        return app
    with _lock:
        app = _apps.get(key)
        if app is None:
            app = _apps[key] = _producer_app(settings)
        return app


def _app_key(settings: Settings) -> tuple[str | None, str | None, str | None, Path]:
    # What the app's connections depend on, so that equal settings share one pool. Without a broker URL
    # the embedded Redis of the data directory is meant: a relative directory is resolved, as the
    # embedded Redis resolves it.
    return (settings.broker_url, settings.redis_url, settings.result_backend, settings.data_dir.resolve())


def _producer_app(settings: Settings) -> Celery:
    """The product's app, tuned for a producer: Redis not answering is an error within seconds."""
    # Imported here so that producers load Celery only when they first send.
    from spreports.workers.app import create_app

    app = create_app(settings)
    # One result store for every thread of the process (Celery's default is one per thread: a web
    # server's threads would each hold a subscription and a pool); its subscription is locked per call.
    app.conf.result_backend_thread_safe = True
    backend_options = dict(app.conf.result_backend_transport_options or {})
    backend_options["retry_policy"] = PRODUCER_RETRY_POLICY
    app.conf.result_backend_transport_options = backend_options
    app.conf.redis_socket_connect_timeout = PRODUCER_CONNECT_TIMEOUT
    app.conf.broker_connection_timeout = PRODUCER_CONNECT_TIMEOUT
    app.conf.task_publish_retry_policy = PRODUCER_RETRY_POLICY
    return app


@contextmanager
def _redis_errors(app: Celery) -> Iterator[None]:
    """Raise :class:`RedisUnavailable` (an AMQP broker: :class:`ServiceUnavailable`) when the broker or the
    result store fails: one line, no password."""
    import redis
    from kombu.exceptions import OperationalError

    try:
        yield
    except (redis.RedisError, OperationalError, OSError) as exc:
        raise _unavailable(app, exc) from None
    except RuntimeError as exc:
        # Celery's result store gives up on a lost Redis with a RuntimeError raised from redis-py's error.
        if not isinstance(exc.__cause__, redis.RedisError | OSError):
            raise
        raise _unavailable(app, exc.__cause__) from None


def _unavailable(app: Celery, exc: BaseException) -> ServiceUnavailable:
    from spreports.connection import safe_url
    from spreports.workers.brokers import is_amqp

    url = str(app.conf.broker_url)
    if is_amqp(url) and not _is_redis_error(exc):
        return ServiceUnavailable(f"the broker at {safe_url(url)} does not answer: {type(exc).__name__}")
    if is_amqp(url):  # the broker answered: the result store (the state Redis) did not
        url = str(app.conf.result_backend)
    return RedisUnavailable(f"Redis at {safe_url(url)} does not answer: {type(exc).__name__}")


def _is_redis_error(exc: BaseException) -> bool:
    import redis

    return isinstance(exc, redis.RedisError) or isinstance(exc.__cause__, redis.RedisError)


def _settings() -> Settings:
    global _default_settings
    with _lock:
        if _default_settings is None:
            _default_settings = load_settings()
        return _default_settings
