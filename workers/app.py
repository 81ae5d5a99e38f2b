"""The Celery app of the product: the only ``Celery()``, configured from :class:`Settings`.

``celery -A spreports.workers.app worker`` and ``spreports worker`` both load ``app`` from here.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
)
from kombu import Exchange, Queue

from spreports import logs, names, redaction
from spreports.beat_schedule import BEAT_SCHEDULE
from spreports.settings import Settings, load_settings
from spreports.tasks.context import attach, context
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
        # Each queue with its own exchange and routing key: a Queue given only a name is bound to the
        # default exchange and routing key (the control queue's), so a message routed by key alone
        # would reach the control queue.
        "task_queues": [_queue(names.CONTROL_QUEUE), _queue(names.DOCUMENTS_QUEUE)],
        "task_routes": {names.RETRIEVE_REPORT_DOCUMENT: {"queue": names.DOCUMENTS_QUEUE}},
    }


def _queue(name: str) -> Queue:
    """A direct queue of its own name: exchange ``name``, routing key ``name``."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


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
    from spreports.tasks.telemetry import watch_spapi_throttling

    prepare_process()
    watch_spapi_throttling()  # every 429 this process receives counts in the fleet's metrics


@after_setup_logger.connect
@after_setup_task_logger.connect
def _format_logs(logger: logging.Logger, **_: object) -> None:
    # Celery configures its own handlers (worker, beat); every one of them gets the product's one
    # format (SPREPORTS_LOG_FORMAT), the work's ids and the redacting filter.
    from celery import current_app

    try:
        log_format = context(current_app).settings.log_format
    except LookupError:  # an app not built by create_app: the format of the settings of this process
        log_format = load_settings().log_format
    logs.install(logger, log_format)
    redaction.install(logger)


#: Task ids -> the token of the ids bound for their run (prerun and postrun run in the same thread).
_bound: dict[str, object] = {}


@task_prerun.connect
def _bind_task_ids(task_id: str, task: Task[Any, Any], kwargs: dict[str, Any] | None = None, **_: object) -> None:
    # Task arguments are ids only (never a URL or token): the known ones go on every record of the run.
    _bound[task_id] = logs.bind(**(kwargs or {}), task_id=task_id, task_name=task.name)


@task_postrun.connect
def _unbind_task_ids(task_id: str, **_: object) -> None:
    token = _bound.pop(task_id, None)
    if token is not None:
        logs.unbind(token)


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    # ``app`` is built on first use, so importing this module (e.g. for create_app) starts nothing.
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        _app = create_app(load_settings())
    return _app
