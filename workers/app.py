"""The Celery app of the product: the only ``Celery()``, configured from :class:`Settings`.

``celery -A workers.app worker`` and ``spreports worker`` both load ``app`` from here.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger
from kombu import Queue

from beat_schedule import BEAT_SCHEDULE
from spreports import names, redaction
from spreports.redis_server import broker_url
from spreports.settings import Settings, load_settings

# Time limits for one task run. Every limit and every retry countdown stays below the broker's
# visibility timeout, or kombu's Redis transport redelivers a task that is still running.
SOFT_TIME_LIMIT = 40 * 60
HARD_TIME_LIMIT = 45 * 60
MAX_RETRY_COUNTDOWN = 10 * 60
VISIBILITY_TIMEOUT = 2 * 3600

TASK_MODULES = ["tasks.health", "tasks.documents", "tasks.reports", "tasks.schedules"]
# The Settings live on the app object, never in ``app.conf``: Celery's config dump (``celery inspect
# conf``, Flower's Config tab) only censors keys it knows, and the Settings carry the broker password.
_SETTINGS_ATTRIBUTE = "spreports_settings"


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration derived from the settings (reliability first, see notes/celery.md)."""
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
        "worker_soft_shutdown_timeout": 30.0,
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
    """Build the Celery app for these settings and register the product's tasks."""
    celery_app = Celery("spreports", include=TASK_MODULES)
    celery_app.config_from_object(celery_config(settings))
    # After config_from_object, which would reset it.
    celery_app.conf.beat_schedule = BEAT_SCHEDULE
    use_settings(celery_app, settings)
    return celery_app


def use_settings(celery_app: Celery, settings: Settings) -> None:
    """Make ``settings`` the ones :func:`settings_of` returns for this app (tests swap them this way)."""
    setattr(celery_app, _SETTINGS_ATTRIBUTE, settings)


@after_setup_logger.connect
@after_setup_task_logger.connect
def _redact_logs(logger: logging.Logger, **_: object) -> None:
    # Celery configures its own handlers; every one of them gets the redacting filter.
    redaction.install(logger)


def settings_of(celery_app: Celery) -> Settings:
    """The settings an app was built with (tasks use this instead of reading the environment)."""
    settings = getattr(celery_app, _SETTINGS_ATTRIBUTE, None)
    if not isinstance(settings, Settings):
        raise LookupError("this Celery app was not built by workers.app.create_app")
    return settings


_app: Celery | None = None


def __getattr__(name: str) -> Celery:
    # ``app`` is built on first use, so importing this module (e.g. for create_app) starts nothing.
    global _app
    if name != "app":
        raise AttributeError(name)
    if _app is None:
        _app = create_app(load_settings())
    return _app
