"""A task goes through a real Redis to a real worker, and its result comes back."""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

from celery.contrib.testing.worker import start_worker

from spreports import names
from spreports.settings import LwaSettings, Settings
from spreports.tasks.context import context
from spreports.workers.app import create_app
from tests.processes import wait_for


def test_task_round_trip_through_real_redis(celery_app, celery_worker) -> None:  # type: ignore[no-untyped-def]
    result = celery_app.send_task(names.PING, kwargs={"value": "hello"})
    assert result.get(timeout=20) == "hello"


def test_routes_and_reliability_settings(celery_app) -> None:  # type: ignore[no-untyped-def]
    conf = celery_app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_time_limit < conf.broker_transport_options["visibility_timeout"]
    assert conf.task_soft_time_limit < conf.task_time_limit
    assert conf.accept_content == ["json"]
    assert conf.worker_send_task_events and conf.task_send_sent_event
    assert {q.name for q in conf.task_queues} == {names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE, names.DATA_QUEUE}
    assert celery_app.amqp.router.route({}, names.RETRIEVE_REPORT_DOCUMENT)["queue"].name == names.DOCUMENTS_QUEUE
    assert set(conf.beat_schedule) == {"sync-report-schedules", "sweep-finished-reports", "requeue-orphaned-documents"}


PASSWORD = "hunter2-broker-password"
LWA_SECRET = "amzn1.oa2-cs.v1.lwa-client-secret-value"
REFRESH = "Atzr|refresh-token-value"


def _with_password(url: str) -> str:
    # Redis's default user has no password, so AUTH default <anything> succeeds: a real password in the URL.
    parts = urlsplit(url)
    if parts.password:
        return url
    return urlunsplit(parts._replace(netloc=f"default:{PASSWORD}@{parts.netloc}"))


def test_worker_config_dump_shows_no_password_or_secret(settings: Settings) -> None:
    secret_settings = settings.model_copy(
        update={
            "broker_url": _with_password(str(settings.broker_url)),
            "lwa": LwaSettings(
                client_id="amzn1.application-oa2-client.x", client_secret=LWA_SECRET, refresh_token=REFRESH
            ),
        }
    )
    password = str(urlsplit(str(secret_settings.broker_url)).password)
    app = create_app(secret_settings)
    try:
        assert context(app).settings is secret_settings
        assert not any("spreports" in key for key in app.conf)
        local = app.conf.humanize(with_defaults=False, censored=True)
        with start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, queues=[names.CONTROL_QUEUE]):
            # limit=1: the one worker's answer ends the wait (else every poll lasts the whole timeout).
            answers = wait_for(lambda: app.control.inspect(timeout=2.0, limit=1).conf(), timeout=60)
        dumped = json.dumps(answers)
        # The worker answered with its real configuration, just censored.
        assert next(iter(answers.values()))["task_acks_late"] is True
        for text in (dumped, local):
            assert "broker_url" in text and "result_backend" in text
            assert password not in text
            assert "lwa-client-secret-value" not in text
            assert "refresh-token-value" not in text
    finally:
        app.close()
