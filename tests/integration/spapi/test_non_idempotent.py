"""Calls that create something are never repeated once Amazon may have acted on them."""

from __future__ import annotations

import pytest
import redis

from spreports.errors import OutcomeUnknown, ServiceUnavailable
from spreports.spapi import RetryPolicy, SpapiClient
from spreports.spapi.operations import OPERATIONS
from tests.integration.spapi.conftest import SELLER, make_settings
from tests.integration.spapi.fake_amazon import Answer, FakeAmazon
from tests.servers import free_port

REPORTS_PATH = "/reports/2021-06-30/reports"
REPORT_PATH = "/reports/2021-06-30/reports/R1"
REPORT = {"reportId": "R1", "reportType": "T", "processingStatus": "DONE", "createdTime": "2024-03-10T13:47:20+00:00"}
FAILED = {"errors": [{"code": "InternalFailure", "message": "We encountered an internal error."}]}
# The fake answers this late; the client's read timeout is far shorter, so the request is sent but unanswered.
SLOW = 3.0
READ_TIMEOUT = 0.3


def _create(client: SpapiClient) -> str:
    return client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", ["ATVPDKIKX0DER"])


def test_only_creating_operations_are_marked_not_idempotent() -> None:
    creating = {name for name, op in OPERATIONS.items() if not op.idempotent}
    assert creating == {"createReport", "createReportSchedule", "createDestination", "createSubscription"}


def test_read_timeout_on_create_report_is_not_retried(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    fake_amazon.on("POST", REPORTS_PATH, Answer(202, {"reportId": "R1"}, delay=SLOW))
    seller_client.transport.timeout = (10.0, READ_TIMEOUT)
    with pytest.raises(OutcomeUnknown, match="may have reached Amazon") as caught:
        _create(seller_client)
    assert caught.value.status is None
    assert len(fake_amazon.requests_to(REPORTS_PATH)) == 1


def test_read_timeout_on_a_read_is_still_retried(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    fake_amazon.on("GET", REPORT_PATH, Answer(200, REPORT, delay=SLOW), Answer(200, REPORT))
    seller_client.transport.timeout = (10.0, READ_TIMEOUT)
    assert seller_client.get_report("R1").report_id == "R1"
    assert len(fake_amazon.requests_to(REPORT_PATH)) == 2


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_on_create_report_raise_after_one_request(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, status: int
) -> None:
    fake_amazon.on("POST", REPORTS_PATH, Answer(status, FAILED), Answer(202, {"reportId": "R1"}))
    with pytest.raises(OutcomeUnknown) as caught:
        _create(seller_client)
    assert caught.value.status == status
    assert len(fake_amazon.requests_to(REPORTS_PATH)) == 1


def test_503_on_create_report_is_retried(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    fake_amazon.on("POST", REPORTS_PATH, Answer(503, FAILED), Answer(202, {"reportId": "R7"}))
    assert _create(seller_client) == "R7"
    assert len(fake_amazon.requests_to(REPORTS_PATH)) == 2


def test_429_on_a_creating_call_is_retried(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    # createSubscription, not createReport: Amazon's 429 drains the bucket, and createReport's refills once a minute.
    path = "/notifications/v1/subscriptions/REPORT_PROCESSING_FINISHED"
    created = {"payload": {"subscriptionId": "S1", "payloadVersion": "1.0", "destinationId": "dest-1"}}
    fake_amazon.on("POST", path, Answer(429, FAILED), Answer(200, created))
    assert seller_client.create_subscription("REPORT_PROCESSING_FINISHED", "dest-1").subscription_id == "S1"
    assert len(fake_amazon.requests_to(path)) == 2


@pytest.mark.parametrize(
    ("path", "call"),
    [
        ("/reports/2021-06-30/schedules", lambda c: c.create_report_schedule("T", ["ATVPDKIKX0DER"], "P1D")),
        (
            "/notifications/v1/subscriptions/REPORT_PROCESSING_FINISHED",
            lambda c: c.create_subscription("REPORT_PROCESSING_FINISHED", "dest-1"),
        ),
    ],
)
def test_other_creating_calls_are_not_repeated_after_a_500(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, path: str, call: object
) -> None:
    fake_amazon.on("POST", path, Answer(500, FAILED))
    with pytest.raises(OutcomeUnknown):
        call(seller_client)  # type: ignore[operator]
    assert len(fake_amazon.requests_to(path)) == 1


def test_refused_connection_on_create_report_is_retried(redis_url: str, redis_client: redis.Redis) -> None:
    fake_amazon = FakeAmazon()  # LWA only: SP-API points at a closed port, so nothing can have been sent
    fake_amazon.start()
    try:
        settings = make_settings(redis_url, fake_amazon.url)
        closed = f"http://127.0.0.1:{free_port()}"
        settings = settings.model_copy(update={"spapi": settings.spapi.model_copy(update={"endpoint": closed})})
        client = SpapiClient.for_seller(
            settings, SELLER, redis=redis_client, retry=RetryPolicy(max_attempts=3, base_delay=0.01)
        )
        slept: list[float] = []
        client.transport.sleep = slept.append
        with pytest.raises(ServiceUnavailable, match="no answer") as caught:
            _create(client)
        assert "may have reached" not in str(caught.value)
        assert not isinstance(caught.value, OutcomeUnknown)
        assert len(slept) == 2  # three attempts
    finally:
        fake_amazon.stop()
