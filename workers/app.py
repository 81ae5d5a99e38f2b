"""The Celery app of the product: the only ``Celery()``, configured from :class:`Settings`.

``celery -A spreports.workers.app worker`` and ``spreports worker`` both load ``app`` from here.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery, Task
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_ready,
)

from spreports import logs, names, redaction, tasks
from spreports.metrics import close_batch, open_batch
from spreports.settings import Settings, load_settings
from spreports.tasks.context import attach, context
from spreports.tasks.retrying import HARD_TIME_LIMIT, SOFT_TIME_LIMIT, VISIBILITY_TIMEOUT
from spreports.workers.brokers import (
    broker_config,
    declare_amqp_queues,
    drop_stale_redis_bindings,
    is_amqp,
    task_queues,
)
from spreports.workers.embedded_redis import broker_url, resolved, state_url
from spreports.workers.redis_transport import install as install_redis_transport

if TYPE_CHECKING:
    from celery.worker import WorkController

TASK_MODULES = [
    "spreports.tasks.health",
    "spreports.tasks.documents",
    "spreports.tasks.reports",
    "spreports.tasks.sweep",
    "spreports.tasks.backfill",
    "spreports.tasks.schedules",
    "spreports.tasks.data",
]


def celery_config(settings: Settings) -> dict[str, Any]:
    """The Celery configuration derived from the settings: late acks, no lost task, JSON only."""
    url = broker_url(settings)
    amqp = is_amqp(url)
    return {
        "broker_url": url,
        # Results live in the state Redis, whichever the broker.
        "result_backend": settings.result_backend or state_url(settings),
        "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
        **broker_config(amqp),
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
        "worker_soft_shutdown_timeout": settings.worker_soft_shutdown_seconds,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_track_started": True,
        "result_expires": 24 * 3600,
        "result_extended": True,
        "timezone": "UTC",
        "enable_utc": True,
        "task_default_queue": names.CONTROL_QUEUE,
        "task_queues": task_queues(amqp),
        "task_routes": {
            names.RETRIEVE_REPORT_DOCUMENT: {"queue": names.DOCUMENTS_QUEUE},
            names.CONVERT_DOCUMENT: {"queue": names.DATA_QUEUE},
        },
    }


class ProductCelery(Celery):
    """Celery, with countdowns sent to an AMQP broker in whole seconds, rounded up.

    On RabbitMQ a countdown travels through Celery's native delayed delivery, which truncates it to whole
    seconds: under one second it fails (``countdown must be a positive number``), and any other comes
    back early (a task waiting for its reserved quota turn would find it not yet there).
    """

    def send_task(
        self,
        name: str,
        args: Any = None,
        kwargs: Any = None,
        countdown: float | None = None,
        *rest: Any,
        **options: Any,
    ) -> Any:
        """:meth:`Celery.send_task`, the countdown rounded up for an AMQP broker."""
        if countdown is not None and countdown > 0 and is_amqp(str(self.conf.broker_url)):
            countdown = math.ceil(countdown)
        return super().send_task(name, args, kwargs, countdown, *rest, **options)


def create_app(settings: Settings) -> Celery:
    """Build the Celery app for these settings and register the product's tasks.

    The settings go to the tasks' context on the app object, never into ``app.conf``: Celery's config
    dump (``celery inspect conf``, Flower's Config tab) censors only the keys it knows, and the settings
    carry the broker password and the LWA secrets.
    """
    # Resolved once here (starting the embedded Redis if need be): everything below sees the same URLs.
    settings = resolved(settings)
    install_redis_transport()  # before the app's first broker connection (see spreports.workers.redis_transport)
    celery_app = ProductCelery("spreports", include=TASK_MODULES)
    celery_app.config_from_object(celery_config(settings))
    # After config_from_object, which would reset it.
    celery_app.conf.beat_schedule = beat_schedule()
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


@worker_ready.connect
def _defer_stop_signals(sender: Any, **_: object) -> None:
    # The product's worker runs Celery's shutdown between two turns of its event loop (see
    # spreports.workers.shutdown); a worker of another app in the process is left as it is.
    if not isinstance(getattr(sender, "app", None), ProductCelery):
        return
    from spreports.workers.shutdown import defer_stop_signals

    defer_stop_signals(getattr(sender, "hub", None))


@worker_init.connect
def _prepare_broker(sender: WorkController, **_: object) -> None:
    # An AMQP broker gets every queue of the product before the worker binds them to its delayed-delivery
    # exchanges. A Redis broker may still hold a binding an older version declared; the worker removes it.
    url = str(sender.app.conf.broker_url)
    if is_amqp(url):
        try:
            declare_amqp_queues(sender.app)
        except Exception as exc:  # the worker's own connection reports an unreachable broker
            logging.getLogger(__name__).warning("the product's queues not declared: %s", type(exc).__name__)
        return
    from spreports.connection import connect
    from spreports.redis_errors import FAILURES, redis_errors

    try:
        with redis_errors("dropping stale queue bindings"):
            drop_stale_redis_bindings(connect(url))
    except FAILURES as exc:  # the worker's own connection reports an unreachable broker
        logging.getLogger(__name__).warning("stale bindings not checked: %s", exc)


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
    # The run's metrics go to Redis in one round trip as it ends (spreports.metrics), not one per event.
    with contextlib.suppress(LookupError):  # a task of an app not built by create_app counts directly
        open_batch(context(task.app).redis)


@task_postrun.connect
def _unbind_task_ids(task_id: str, **_: object) -> None:
    close_batch()
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


def beat_schedule() -> dict[str, dict[str, Any]]:
    """The entries of ``beat_schedule.py``, loaded as the module ``spreports.beat_schedule``.

    pyproject.toml maps a package, not a single module: the file sits beside the tasks package, at the
    checkout's top level and in ``spreports/`` of a wheel, and is loaded from there under its one name.
    """
    module = sys.modules.get("spreports.beat_schedule")
    if module is None:
        location = Path(tasks.__file__).parent.parent / "beat_schedule.py"
        spec = importlib.util.spec_from_file_location("spreports.beat_schedule", location)
        if spec is None or spec.loader is None:
            raise ImportError(f"no beat schedule at {location}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    schedule: dict[str, dict[str, Any]] = module.BEAT_SCHEDULE
    return schedule
