"""What a failing SP-API call logs: a retry once, in one line that says its error once; a refusal nothing
(the caller tells it, once)."""

from __future__ import annotations

import logging

import pytest

from spreports.errors import InvalidRequest
from spreports.spapi import SpapiClient
from tests.integration.spapi.fake_amazon import Answer, FakeAmazon

REPORT = {"reportId": "R1", "reportType": "T", "processingStatus": "DONE", "createdTime": "2024-03-10T13:47:20+00:00"}
REPORT_PATH = "/reports/2021-06-30/reports/R1"
ERRORS = {"errors": [{"code": "InvalidInput", "message": "Invalid reportId R1", "details": ""}]}


@pytest.fixture
def no_sleep(seller_client: SpapiClient) -> None:
    seller_client.transport.sleep = lambda seconds: None


def test_a_retry_is_one_line_that_says_the_error_once(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, no_sleep: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="spreports.spapi.transport")
    fake_amazon.on("GET", REPORT_PATH, Answer(503, ERRORS), Answer(200, REPORT))
    seller_client.get_report("R1")
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith("getReport for seller ") and "HTTP 503 InvalidInput" in warning
    assert warning.count("getReport") == 1 and "retrying in " in warning and "(attempt 1 of " in warning


@pytest.mark.parametrize("status", [400, 404])
def test_a_refusal_is_raised_not_logged_as_a_retryable_failure(
    fake_amazon: FakeAmazon, seller_client: SpapiClient, caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.INFO, logger="spreports.spapi.transport")
    fake_amazon.on("GET", REPORT_PATH, Answer(status, ERRORS))
    with pytest.raises(InvalidRequest, match=f"HTTP {status} InvalidInput"):
        seller_client.get_report("R1")
    assert len(fake_amazon.api_requests()) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
