"""Models (aliases, timestamps, hidden URLs), error mapping and the backoff formula, without a network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests
from pydantic import ValidationError

from spreports.errors import Conflict, InvalidRequest, NotFound, RateLimited, ServiceUnavailable
from spreports.spapi import Report, ReportDocument, RetryPolicy
from spreports.spapi.models import PERIODS, CreateReportScheduleSpecification, CreateReportSpecification, iso
from spreports.spapi.operations import GET_REPORT
from spreports.spapi.transport import USER_AGENT, CallContext, error_from_response
from spreports.spapi.wire import build
from tests.models import load


def _response(status: int, body: object, request_id: str | None = "rid-1") -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(body).encode() if body is not None else b""
    if request_id:
        response.headers["x-amzn-RequestId"] = request_id
    return response


def test_report_parses_z_and_offset_times() -> None:
    report = Report.model_validate(
        {"reportId": "1", "reportType": "T", "processingStatus": "DONE", "createdTime": "2024-03-10T13:47:20.677Z",
         "processingEndTime": "2020-09-23T22:52:59+00:00", "marketplaceIds": ["ATVPDKIKX0DER"], "newField": 1}
    )  # fmt: skip
    assert report.created_time == datetime(2024, 3, 10, 13, 47, 20, 677000, tzinfo=UTC)
    assert report.processing_end_time == datetime(2020, 9, 23, 22, 52, 59, tzinfo=UTC)
    assert report.marketplace_ids == ["ATVPDKIKX0DER"]


def test_report_without_timezone_is_refused() -> None:
    with pytest.raises(ValueError):
        Report.model_validate({"reportId": "1", "reportType": "T", "processingStatus": "DONE",
                               "createdTime": "2024-03-10T13:47:20"})  # fmt: skip


def test_document_url_is_hidden() -> None:
    doc = ReportDocument.model_validate({"reportDocumentId": "D", "url": "https://x.cloudfront.net/?sig=S3CRET"})
    assert "S3CRET" not in repr(doc) and "S3CRET" not in str(doc)
    assert "S3CRET" not in doc.model_dump_json()
    assert doc.url.get_secret_value().endswith("S3CRET")
    assert doc.compression_algorithm is None


def test_request_bodies_are_camel_case_without_unset_fields() -> None:
    spec = CreateReportSpecification(
        report_type="T", marketplace_ids=["M"], data_start_time=datetime(2024, 3, 10, 20, 11, 24, tzinfo=UTC)
    )
    assert spec.to_wire() == {"reportType": "T", "marketplaceIds": ["M"], "dataStartTime": "2024-03-10T20:11:24Z"}
    assert iso(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("status", "expected"),
    [(400, InvalidRequest), (403, InvalidRequest), (404, NotFound), (409, Conflict), (429, RateLimited),
     (500, ServiceUnavailable), (503, ServiceUnavailable)],
)  # fmt: skip
def test_error_from_response(status: int, expected: type[Exception]) -> None:
    body = {"errors": [{"code": "InvalidInput", "message": "Invalid input", "details": "reportTypes;"}]}
    error = error_from_response(GET_REPORT, CallContext("A1", "na"), _response(status, body))
    assert type(error) is expected
    assert (error.status, error.request_id) == (status, "rid-1")
    assert error.errors[0].code == "InvalidInput" and error.errors[0].details == "reportTypes;"
    assert str(error) == (
        f"getReport for seller A1 failed: HTTP {status} InvalidInput: Invalid input (reportTypes;) (request id rid-1)"
    )


def test_error_without_a_json_body() -> None:
    response = _response(502, None, request_id=None)
    response._content = b"<html>Bad Gateway</html>"
    response.reason = "Bad Gateway"
    error = error_from_response(GET_REPORT, CallContext("A1", "na"), response)
    assert isinstance(error, ServiceUnavailable) and error.errors == () and "Bad Gateway" in str(error)


def test_rate_limited_carries_the_operation_interval() -> None:
    error = error_from_response(GET_REPORT, CallContext("A1", "na"), _response(429, {"errors": []}))
    assert isinstance(error, RateLimited) and error.retry_after == pytest.approx(0.5)


def test_full_jitter_backoff_bounds() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0)
    assert [policy.delay(n, lambda: 1.0) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.delay(3, lambda: 0.0) == 0.0


def test_user_agent() -> None:
    assert USER_AGENT.startswith("spreports/") and USER_AGENT.endswith(" (Language=Python)")


def test_periods_are_the_models_enum_and_what_the_spec_accepts() -> None:
    model = load("reports_2021-06-30.json")
    enum = model["definitions"]["CreateReportScheduleSpecification"]["properties"]["period"]["enum"]
    assert list(PERIODS) == enum
    for period in PERIODS:
        spec = CreateReportScheduleSpecification(report_type="T", marketplace_ids=["M"], period=period)
        assert spec.to_wire()["period"] == period
    with pytest.raises(ValidationError):
        CreateReportScheduleSpecification(report_type="T", marketplace_ids=["M"], period="EVERY_TUESDAY")


def test_naive_datetimes_never_go_out_without_an_offset() -> None:
    # Treated as an error everywhere (query parameters and bodies alike): UTC or local time cannot be told.
    naive = datetime(2024, 3, 10, 20, 11, 24)
    with pytest.raises(InvalidRequest, match="naive datetime has no UTC offset"):
        iso(naive)
    with pytest.raises(InvalidRequest, match="data_start_time: Input should have timezone info"):
        build(CreateReportSpecification, report_type="T", marketplace_ids=["M"], data_start_time=naive)
    assert iso(datetime(2024, 3, 10, 22, 11, 24, tzinfo=timezone(timedelta(hours=2)))) == "2024-03-10T22:11:24+02:00"
