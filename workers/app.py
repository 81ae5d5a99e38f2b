"""The Celery app of the product: the only ``Celery()``, configured from :class:`Settings`.

``celery -A spreports.workers.app worker`` and ``spreports worker`` both load ``app`` from here.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger, worker_init, worker_process_init
from kombu import Queue

from spreports import names, redaction
from spreports.beat_schedule import BEAT_SCHEDULE
from spreports.settings import Settings, load_settings
from spreports.tasks.context import attach
from spreports.tasks.retrying import HARD_TIME_LIMIT, SOFT_SHUTDOWN_SECONDS, SOFT_TIME_LIMIT, VISIBILITY_TIMEOUT
from spreports.workers.embedded_redis import broker_url

TASK_MODULES = [
    "spreports.tasks.health",
    "spreports.tasks.documents",
    "spreports.tasks.reports",
    "spreports.tasks.backfill",
    "spreports.tasks.schedules",
]


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration derived from the settings: late acks, no lost task, JSON only."""
    url = broker_url(settings)
    transport_options = {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        # Producers raise instead of hanging when Redis is down.
        "max_retries": 3,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 3,
    }
    return {
        "broker_url": url,
        "result_backend": settings.result_backend or url,
        "broker_transport_options": transport_options,
        "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": SOFT_TIME_LIMIT,
        "task_time_limit": HARD_TIME_LIMIT,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "worker_soft_shutdown_timeout": SOFT_SHUTDOWN_SECONDS,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "result_expires": 24 * 3600,
        "result_extended": True,
        "timezone": "UTC",
        "enable_utc": True,
        "task_default_queue": names.CONTROL_QUEUE,
        "task_queues": [Queue(names.CONTROL_QUEUE), Queue(names.DOCUMENTS_QUEUE)],
        "task_routes": {names.RETRIEVE_REPORT_DOCUMENT: {"queue": names.DOCUMENTS_QUEUE}},
    }


def create_app(settings: Settings) -> Celery:
    """Build the Celery app for these settings and register the product's tasks.

    The settings go to the tasks' context on the app object, never into ``app.conf``: Celery's config
    dump (``celery inspect conf``, Flower's Config tab) censors only the keys it knows, and the settings
    carry the broker password and the LWA secrets.
    """
    if not settings.broker_url:
        # Resolved once here (starting the embedded Redis if need be): everything below sees one URL.
        settings = settings.model_copy(update={"broker_url": broker_url(settings)})
    celery_app = Celery("spreports", include=TASK_MODULES)
    celery_app.config_from_object(celery_config(settings))
    # After config_from_object, which would reset it.
    celery_app.conf.beat_schedule = BEAT_SCHEDULE
    attach(celery_app, settings)
    return celery_app


@worker_init.connect
@worker_process_init.connect
def _prepare_process(**_: object) -> None:
    # Per-process set-up for retrieval, when a worker (or a prefork child) starts, never on import.
    from spreports.documents import prepare_process

    prepare_process()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_logs(logger: logging.Logger, **_: object) -> None:
    # Celery configures its own handlers; every one of them gets the redacting filter.
    redaction.install(logger)


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    # ``app`` is built on first use, so importing this module (e.g. for create_app) starts nothing.
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        _app = create_app(load_settings())
    return _app
