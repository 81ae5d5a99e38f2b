"""A task goes through a real Redis to a real worker, and its result comes back."""

from __future__ import annotations

from spreports import names


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
    assert {q.name for q in conf.task_queues} == {names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE}
    assert celery_app.amqp.router.route({}, names.RETRIEVE_REPORT_DOCUMENT)["queue"].name == names.DOCUMENTS_QUEUE
    assert set(conf.beat_schedule) == {"sync-report-schedules", "sweep-finished-reports"}
