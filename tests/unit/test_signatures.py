"""Every task message is built by :mod:`spreports.tasks.signatures` without a queue, and the app's routing puts
each on the queue its task belongs to, on either broker (no worker, no broker connection)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from celery import Celery, Signature

from spreports import names
from spreports.settings import Settings
from spreports.task_arguments import BackfillRequest, ConvertRequest, DocumentRequest, ReportFollow, ReportRequest
from spreports.tasks import signatures
from spreports.workers.app import create_app

BROKERS = {"redis": "redis://127.0.0.1:1/0", "rabbitmq": "amqp://guest:guest@127.0.0.1:1//"}
DOCUMENT = DocumentRequest(seller_id="A1SELLER", report_document_id="DOC-1", report_id="R1", notification_id="N1")
REQUEST = ReportRequest(report_type="GET_MERCHANT_LISTINGS_ALL_DATA", seller_id="A1SELLER")
BACKFILL = BackfillRequest(report_type="GET_FLAT_FILE_ALL_ORDERS_DATA_BY_ORDER_DATE_GENERAL",
                           data_start_time=datetime(2026, 1, 1, tzinfo=UTC),
                           data_end_time=datetime(2026, 2, 1, tzinfo=UTC))  # fmt: skip


def built(app: Celery) -> list[tuple[Signature, str, str]]:  # type: ignore[type-arg]
    """(signature, its task's name, the queue it belongs on) for every builder."""
    chain = signatures.request_then_follow(app, REQUEST, task_ids="period-1")
    first, then = chain.tasks  # type: ignore[attr-defined]
    return [
        (signatures.retrieval(app, DOCUMENT), names.RETRIEVE_REPORT_DOCUMENT, names.DOCUMENTS_QUEUE),
        (signatures.report_request(app, REQUEST), names.REQUEST_REPORT, names.CONTROL_QUEUE),
        (signatures.follow(app, ReportFollow(seller_id="A1SELLER", report_id="R1")), names.FOLLOW_REPORT,
         names.CONTROL_QUEUE),
        (first, names.REQUEST_REPORT, names.CONTROL_QUEUE),
        (then, names.FOLLOW_REPORT, names.CONTROL_QUEUE),
        (signatures.backfill(app, BACKFILL), names.BACKFILL_REPORTS, names.CONTROL_QUEUE),
        (signatures.conversion(app, ConvertRequest(seller_id="A1SELLER", report_document_id="DOC-1")),
         names.CONVERT_DOCUMENT, names.DATA_QUEUE),
        (signatures.schedule_sync(app, beat_start=False, expires=600), names.SYNC_REPORT_SCHEDULES,
         names.CONTROL_QUEUE),
        (signatures.schedule_check(app, beat_start=True, expires=300), names.CHECK_REPORT_SCHEDULES,
         names.CONTROL_QUEUE),
    ]  # fmt: skip


@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_each_signature_is_routed_to_its_tasks_queue(broker: str) -> None:
    settings = Settings(_env_file=None, broker_url=BROKERS[broker], redis_url="redis://127.0.0.1:2/0")
    app = create_app(settings)
    for signature, name, queue in built(app):
        assert signature.task == name
        assert "queue" not in signature.options  # routing decides, not the sender
        route = app.amqp.router.route(dict(signature.options), signature.task, signature.args, signature.kwargs)
        assert (name, route["queue"].name) == (name, queue)
        assert route["queue"].exchange.name == queue  # each queue has its own exchange on both brokers


def test_the_arguments_are_the_models_and_the_chain_names_its_tasks_by_period() -> None:
    app = create_app(Settings(_env_file=None, broker_url=BROKERS["redis"], redis_url="redis://127.0.0.1:2/0"))
    assert signatures.retrieval(app, DOCUMENT).kwargs == DOCUMENT.task_kwargs()
    assert signatures.backfill(app, BACKFILL).kwargs == BACKFILL.task_kwargs()
    first, then = signatures.request_then_follow(app, REQUEST, task_ids="period-1").tasks  # type: ignore[attr-defined]
    assert first.kwargs == REQUEST.task_kwargs() and not then.kwargs  # the follower takes the request's result
    assert (first.options["task_id"], then.options["task_id"]) == ("request-period-1", "follow-period-1")
    assert signatures.schedule_check(app, beat_start=True, expires=300).options["expires"] == 300


def test_only_the_senders_that_read_a_result_keep_one() -> None:
    app = create_app(Settings(_env_file=None, broker_url=BROKERS["redis"], redis_url="redis://127.0.0.1:2/0"))
    assert signatures.retrieval(app, DOCUMENT).options["ignore_result"] is True
    assert signatures.retrieval(app, DOCUMENT, keep_result=True).options["ignore_result"] is False
    conversion = signatures.conversion(app, ConvertRequest(seller_id="A1SELLER", report_document_id="DOC-1"))
    assert conversion.options["ignore_result"] is True
