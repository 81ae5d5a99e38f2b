"""Errors, retries and secrecy of SP-API calls against the fake Amazon."""

from __future__ import annotations

import logging

import pytest
import redis

from spreports.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    UnexpectedResponse,
)
from spreports.settings import Settings
from spreports.spapi import RetryPolicy, SpapiClient
from tests.integration.spapi.conftest import CLIENT_SECRET, REFRESH_TOKEN, SELLER, make_settings
from tests.integration.spapi.fake_amazon import Answer, FakeAmazon
from tests.servers import free_port

REPORT = {"reportId": "R1", "reportType": "T", "processingStatus": "DONE", "createdTime": "2024-03-10T13:47:20+00:00"}
REPORT_PATH = "/reports/2021-06-30/reports/R1"
QUOTA = {"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.",
                     "details": ""}]}  # fmt: skip
PRESIGNED = "https://d34o8swod1owfl.cloudfront.net/doc.txt?X-Amz-Signature=SECRETSIGNATURE"


class Sleeps:
    """A fake clock and sleep: sleeping advances the clock, nothing waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def sleeps(seller_client: SpapiClient) -> Sleeps:
    fake = Sleeps()
    seller_client.transport.sleep = fake.sleep
    seller_client.transport.clock = fake.clock
    return fake


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_retryable_statuses_are_retried_then_succeed(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, sleeps: Sleeps, status: int
) -> None:
    fake_amazon.on("GET", REPORT_PATH, Answer(status, QUOTA), Answer(status, QUOTA), Answer(200, REPORT))
    assert seller_client.get_report("R1").report_id == "R1"
    assert len(fake_amazon.api_requests()) == 3
    assert len(sleeps.slept) == 2
    # Full jitter: each sleep lies in [0, min(cap, base * 2^(n-1))].
    policy = seller_client.transport.retry
    for n, slept in enumerate(sleeps.slept, start=1):
        assert 0 <= slept <= min(policy.max_delay, policy.base_delay * 2 ** (n - 1))


def test_persistent_429_raises_rate_limited_after_the_attempts(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, sleeps: Sleeps, redis_client: redis.Redis
) -> None:
    fake_amazon.on("GET", REPORT_PATH, Answer(429, QUOTA))
    with pytest.raises(RateLimited) as caught:
        seller_client.get_report("R1")
    policy = seller_client.transport.retry
    assert len(fake_amazon.api_requests()) == policy.max_attempts
    assert caught.value.retry_after is not None and caught.value.retry_after >= 0.5  # 1 / getReport's rate
    assert caught.value.status == 429 and caught.value.request_id
    assert caught.value.errors[0].code == "QuotaExceeded"
    # Amazon's 429 drained the fleet's bucket.
    tokens = float(redis_client.hget(f"spreports:ratelimit:na:{SELLER}:getReport", "tokens") or 99)
    assert tokens < 1


def test_total_time_budget_bounds_the_retries(
    fake_amazon: FakeAmazon, spapi_settings: Settings, redis_client: redis.Redis
) -> None:
    policy = RetryPolicy(max_attempts=100, base_delay=1.0, max_delay=4.0, max_total=10.0)
    client = SpapiClient.for_seller(spapi_settings, SELLER, redis=redis_client, retry=policy)
    fake = Sleeps()
    client.transport.sleep, client.transport.clock = fake.sleep, fake.clock
    client.transport.rand = lambda: 1.0  # the longest jitter, to make the budget bind
    fake_amazon.on("GET", REPORT_PATH, Answer(503, {"errors": [{"code": "ServiceUnavailable", "message": "x"}]}))
    with pytest.raises(ServiceUnavailable):
        client.get_report("R1")
    assert sum(fake.slept) <= policy.max_total
    assert fake.slept == [1.0, 2.0, 4.0]  # the fourth sleep (4 s) would pass the 10 s budget
    assert len(fake_amazon.api_requests()) == 4


@pytest.mark.parametrize(
    ("status", "expected"),
    [(400, InvalidRequest), (401, InvalidRequest), (403, InvalidRequest), (404, NotFound), (409, Conflict),
     (415, InvalidRequest), (413, InvalidRequest)],
)  # fmt: skip
def test_other_4xx_raise_at_once(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, sleeps: Sleeps, status: int, expected: type[Exception]
) -> None:
    body = {"errors": [{"code": "InvalidInput", "message": "One or more required parameters missing",
                        "details": "reportTypes;"}]}  # fmt: skip
    fake_amazon.on("GET", REPORT_PATH, Answer(status, body))
    with pytest.raises(expected) as caught:
        seller_client.get_report("R1")
    error = caught.value
    assert type(error) is expected
    assert error.status == status
    assert error.request_id is not None and error.request_id in str(error)
    assert error.errors[0].details == "reportTypes;"
    assert "InvalidInput" in str(error) and SELLER in str(error)
    assert len(fake_amazon.api_requests()) == 1
    assert sleeps.slept == []


def test_connection_errors_are_retried_then_raise(redis_url: str, redis_client: redis.Redis) -> None:
    fake_amazon = FakeAmazon()  # LWA only: SP-API points at a closed port
    fake_amazon.start()
    try:
        settings = make_settings(redis_url, fake_amazon.url)
        closed = f"http://127.0.0.1:{free_port()}"
        settings = settings.model_copy(update={"spapi": settings.spapi.model_copy(update={"endpoint": closed})})
        client = SpapiClient.for_seller(
            settings, SELLER, redis=redis_client, retry=RetryPolicy(max_attempts=3, base_delay=0.01)
        )
        fake = Sleeps()
        client.transport.sleep, client.transport.clock = fake.sleep, fake.clock
        with pytest.raises(ServiceUnavailable, match="no answer"):
            client.get_report("R1")
        assert len(fake.slept) == 2
    finally:
        fake_amazon.stop()


def test_missing_subscription_is_none(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    missing = {"errors": [{"code": "NotFound", "message": "The resource specified does not exist."}]}
    fake_amazon.on("GET", "/notifications/v1/subscriptions/REPORT_PROCESSING_FINISHED", Answer(404, missing))
    assert seller_client.get_subscription("REPORT_PROCESSING_FINISHED") is None


def test_subscription_conflict(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    exists = {"errors": [{"code": "StateConflict", "message": "Subscription already exist for notification type"}]}
    fake_amazon.on("POST", "/notifications/v1/subscriptions/REPORT_PROCESSING_FINISHED", Answer(409, exists))
    with pytest.raises(Conflict, match="StateConflict"):
        seller_client.create_subscription("REPORT_PROCESSING_FINISHED", "dest-1")


def test_a_body_off_the_model_is_unexpected_and_hides_values(
    fake_amazon: FakeAmazon, seller_client: SpapiClient
) -> None:
    fake_amazon.on("GET", "/reports/2021-06-30/documents/D1", Answer(200, {"url": PRESIGNED}))
    with pytest.raises(UnexpectedResponse, match="reportDocumentId") as caught:
        seller_client.get_report_document("D1")
    assert "SECRETSIGNATURE" not in str(caught.value)


def test_report_times_with_offsets_parse(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    body = {**REPORT, "processingEndTime": "2020-09-23T22:52:59+00:00", "dataStartTime": "2020-09-23T00:00:00.000Z"}
    fake_amazon.on("GET", REPORT_PATH, Answer(200, body))
    report = seller_client.get_report("R1")
    assert report.processing_end_time is not None and report.processing_end_time.utcoffset().total_seconds() == 0
    assert report.data_start_time is not None and report.data_start_time.isoformat() == "2020-09-23T00:00:00+00:00"


def test_bad_input_is_refused_before_any_call(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    with pytest.raises(InvalidRequest, match="period"):
        seller_client.create_report_schedule("T", ["ATVPDKIKX0DER"], "EVERY_TUESDAY")
    with pytest.raises(InvalidRequest, match="report type"):
        list(seller_client.get_reports(report_types=[]))
    with pytest.raises(InvalidRequest, match="at most 10"):
        list(seller_client.get_reports(report_types=[f"T{i}" for i in range(11)]))
    with pytest.raises(InvalidRequest, match="report_id"):
        seller_client.get_report("")
    with pytest.raises(InvalidRequest, match="arn"):
        seller_client.create_destination("d", "not-an-arn")
    assert fake_amazon.api_requests() == []


def test_path_ids_are_amazon_ids_in_one_segment(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    fake_amazon.handler = lambda request: Answer(200, REPORT)
    # Never another resource, a query or (``..``) a dot segment the HTTP library would remove.
    for trick in ("a/b?x=1", "..", "%2e%2e"):
        with pytest.raises(InvalidRequest, match="report_id is not an Amazon id"):
            seller_client.get_report(trick)
    assert fake_amazon.api_requests() == []
    seller_client.get_report("R1.a-b_c")
    assert fake_amazon.api_requests()[0].raw_uri == "/reports/2021-06-30/reports/R1.a-b_c"


def test_rate_limit_header_retunes_the_bucket(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, redis_client: redis.Redis
) -> None:
    fake_amazon.on("GET", REPORT_PATH, Answer(200, REPORT, headers={"x-amzn-RateLimit-Limit": "0.5"}))
    seller_client.get_report("R1")
    assert float(redis_client.hget(f"spreports:ratelimit:na:{SELLER}:getReport", "rate") or 0) == 0.5


def test_restricted_report_uses_a_restricted_data_token(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    path = "/reports/2021-06-30/documents/D9"
    rdt = "Atz.sprdt|SECRET-RDT"
    fake_amazon.on("POST", "/tokens/2021-03-01/restrictedDataToken",
                   Answer(200, {"restrictedDataToken": rdt, "expiresIn": 3600}))  # fmt: skip
    fake_amazon.on(
        "GET", path, Answer(200, {"reportDocumentId": "D9", "url": PRESIGNED, "compressionAlgorithm": "GZIP"})
    )
    for _ in range(2):
        doc = seller_client.get_report_document("D9", report_type="GET_FLAT_FILE_ORDER_REPORT_DATA_SHIPPING")
    assert doc.compression_algorithm == "GZIP" and doc.url.get_secret_value() == PRESIGNED
    (token_call,) = fake_amazon.requests_to("/tokens/2021-03-01/restrictedDataToken")  # cached for its lifetime
    assert token_call.body == {"restrictedResources": [{"method": "GET", "path": path}]}
    assert token_call.headers["x-amz-access-token"] == "Atza|seller-1"
    assert [s.headers["x-amz-access-token"] for s in fake_amazon.requests_to(path)] == [rdt, rdt]
    # An unrestricted type uses the LWA token.
    seller_client.get_report_document("D9", report_type="GET_MERCHANT_LISTINGS_ALL_DATA")
    assert fake_amazon.requests_to(path)[-1].headers["x-amz-access-token"] == "Atza|seller-1"


def test_content_encoding_flag_is_sent(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    path = "/reports/2021-06-30/documents/D1"
    fake_amazon.on("GET", path, Answer(200, {"reportDocumentId": "D1", "url": PRESIGNED}))
    seller_client.get_report_document("D1", enable_content_encoding_url_header=True)
    assert fake_amazon.requests_to(path)[0].query == {"enableContentEncodingUrlHeader": "true"}


def test_no_secret_in_logs_or_errors(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, sleeps: Sleeps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = "/reports/2021-06-30/documents/D1"
    fake_amazon.on("GET", path, Answer(503, QUOTA), Answer(200, {"reportDocumentId": "D1", "url": PRESIGNED}))
    fake_amazon.on("GET", REPORT_PATH, Answer(400, QUOTA))
    doc = seller_client.get_report_document("D1")
    with pytest.raises(InvalidRequest) as caught:
        seller_client.get_report("R1")
    secrets = [REFRESH_TOKEN, CLIENT_SECRET, "Atza|seller-1", "SECRETSIGNATURE"]
    texts = [record.getMessage() for record in caplog.records] + [str(caught.value), repr(caught.value)]
    texts += [repr(doc), str(doc), repr(seller_client), repr(seller_client.transport)]
    assert any("request id" in text for text in texts)  # the failures were logged, with Amazon's request id
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked into {text!r}"


def test_a_listing_can_resume_from_its_next_token(fake_amazon: FakeAmazon, seller_client: SpapiClient) -> None:
    fake_amazon.on(
        "GET",
        "/reports/2021-06-30/reports",
        Answer(200, {"reports": [REPORT], "nextToken": "page-2"}),
        Answer(200, {"reports": [{**REPORT, "reportId": "R2"}]}),
    )
    first = seller_client.get_reports_page(["T"], processing_statuses=["DONE"], page_size=100)
    assert [r.report_id for r in first.reports] == ["R1"] and first.next_token == "page-2"
    second = seller_client.get_reports_page(next_token=first.next_token)
    assert [r.report_id for r in second.reports] == ["R2"] and second.next_token is None
    sent = fake_amazon.api_requests()
    assert sent[0].query == {"reportTypes": "T", "processingStatuses": "DONE", "pageSize": "100"}
    assert sent[1].query == {"nextToken": "page-2"}
