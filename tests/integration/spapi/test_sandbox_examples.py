"""Every ``x-amzn-api-sandbox`` static example of the Reports and Notifications models, replayed.

For each example the fake Amazon answers the example's response; the client is called with the
example's request parameters. The test checks the request the client sent (method, path, query, body,
headers) and that the parsed model (or the raised error) matches the example.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from spreports.errors import InvalidRequest
from spreports.spapi import SpapiClient
from spreports.spapi.operations import OPERATIONS
from tests.integration.spapi.fake_amazon import Answer, FakeAmazon
from tests.models import load

IMPLEMENTED = {
    "getReports", "createReport", "cancelReport", "getReport", "getReportSchedules", "createReportSchedule",
    "cancelReportSchedule", "getReportSchedule", "getReportDocument", "getSubscription", "createSubscription",
    "deleteSubscriptionById", "getDestinations", "createDestination", "deleteDestination",
}  # fmt: skip
NOTIFICATION_TYPE = "REPORT_PROCESSING_FINISHED"


def _examples() -> list[Any]:
    cases = []
    for name in ("reports_2021-06-30.json", "notifications.json"):
        model = load(name)
        for operations in model["paths"].values():
            for op in operations.values():
                if not isinstance(op, dict) or op.get("operationId") not in IMPLEMENTED:
                    continue
                for status, response in op["responses"].items():
                    for index, example in enumerate(response.get("x-amzn-api-sandbox", {}).get("static", [])):
                        case_id = f"{op['operationId']}-{status}-{index}"
                        cases.append(pytest.param(op["operationId"], int(status), example, id=case_id))
    return cases


def _value(example: dict[str, Any], name: str, default: Any = None) -> Any:
    return example["request"]["parameters"].get(name, {}).get("value", default)


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _normal(value: Any) -> Any:
    """JSON with every ISO timestamp turned into a datetime, so ``...000Z`` equals ``+00:00``."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, str) and len(value) >= 20 and value[4] == "-" and "T" in value:
        try:
            return _when(value)
        except ValueError:
            return value
    return value


def _invoke(client: SpapiClient, grantless: SpapiClient, op: str, ex: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """Call the client for ``op`` with the example's parameters; returns (result, path params used)."""
    body = _value(ex, "body", {})
    if op == "getReports":
        result = list(
            client.get_reports(
                report_types=_value(ex, "reportTypes"), processing_statuses=_value(ex, "processingStatuses")
            )
        )
        return result, {}
    if op == "createReport":
        return client.create_report(
            body["reportType"], body.get("marketplaceIds", []), data_start_time=_when(body.get("dataStartTime"))
        ), {}
    if op in ("cancelReport", "getReport"):
        report_id = _value(ex, "reportId", "ReportIdX")
        call = client.cancel_report if op == "cancelReport" else client.get_report
        return call(report_id), {"reportId": report_id}
    if op == "getReportSchedules":
        return client.get_report_schedules(_value(ex, "reportTypes")), {}
    if op == "createReportSchedule":
        return client.create_report_schedule(
            body["reportType"],
            body.get("marketplaceIds", []),
            body["period"],
            next_report_creation_time=_when(body.get("nextReportCreationTime")),
        ), {}
    if op in ("cancelReportSchedule", "getReportSchedule"):
        schedule_id = _value(ex, "reportScheduleId", "ScheduleIdX")
        call = client.cancel_report_schedule if op == "cancelReportSchedule" else client.get_report_schedule
        return call(schedule_id), {"reportScheduleId": schedule_id}
    if op == "getReportDocument":
        document_id = _value(ex, "reportDocumentId")
        return client.get_report_document(document_id), {"reportDocumentId": document_id}
    if op == "getSubscription":
        return client.get_subscription(NOTIFICATION_TYPE), {"notificationType": NOTIFICATION_TYPE}
    if op == "createSubscription":
        result = client.create_subscription(NOTIFICATION_TYPE, "TEST_CASE_200_DESTINATION_ID")
        return result, {"notificationType": NOTIFICATION_TYPE}
    if op == "deleteSubscriptionById":
        params = {"notificationType": NOTIFICATION_TYPE, "subscriptionId": "TEST_CASE_200_SUBSCRIPTION_ID"}
        return grantless.delete_subscription_by_id(**{"notification_type": NOTIFICATION_TYPE,
                                                      "subscription_id": "TEST_CASE_200_SUBSCRIPTION_ID"}), params  # fmt: skip
    if op == "getDestinations":
        return grantless.get_destinations(), {}
    if op == "createDestination":
        return grantless.create_destination("SQSDestination", "arn:aws:sqs:us-east-2:444455556666:queue1"), {}
    if op == "deleteDestination":
        return grantless.delete_destination("TEST_CASE_200_DESTINATION_ID"), {
            "destinationId": "TEST_CASE_200_DESTINATION_ID"
        }
    raise AssertionError(op)


def _expected_query(op: str, ex: dict[str, Any]) -> dict[str, str]:
    query = {}
    for name, spec in ex["request"]["parameters"].items():
        if name in ("body", "reportId", "reportScheduleId", "reportDocumentId"):
            continue
        query[name] = ",".join(spec["value"]) if isinstance(spec["value"], list) else str(spec["value"])
    return query


def _expected_body(op: str, ex: dict[str, Any]) -> Any:
    if op == "createSubscription":
        return {"payloadVersion": "1.0", "destinationId": "TEST_CASE_200_DESTINATION_ID"}
    if op == "createDestination":
        return {
            "name": "SQSDestination",
            "resourceSpecification": {"sqs": {"arn": "arn:aws:sqs:us-east-2:444455556666:queue1"}},
        }
    return _value(ex, "body")


def _dump(result: Any) -> Any:
    if isinstance(result, list):
        return [_dump(item) for item in result]
    if hasattr(result, "model_dump"):
        data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        if "url" in data:
            data["url"] = result.url.get_secret_value()
        return data
    return result


@pytest.mark.parametrize(("op", "status", "example"), _examples())
def test_sandbox_example(
    op: str,
    status: int,
    example: dict[str, Any],
    fake_amazon: FakeAmazon,
    seller_client: SpapiClient,
    grantless_client: SpapiClient,
) -> None:
    operation = OPERATIONS[op]
    response = example.get("response")
    path_template = operation.path
    # Path parameters are the example's when given; otherwise the test's own ids.
    # The fake answers by concrete path, so register every path the call can take.
    fake_amazon.handler = lambda request: (
        Answer(200, {"reports": []}) if op == "getReports" and "nextToken" in request.args else Answer(status, response)
    )
    if status >= 400:
        with pytest.raises(InvalidRequest) as caught:
            _invoke(seller_client, grantless_client, op, example)
        sent = fake_amazon.api_requests()
        if not sent:
            # The client refused the input itself (createReportSchedule without marketplaceIds).
            assert op == "createReportSchedule" and "marketplace_ids" in str(caught.value)
            return
        assert caught.value.status == status
        assert caught.value.request_id and caught.value.request_id.startswith("req-")
        assert [(e.code, e.message, e.details) for e in caught.value.errors] == [
            (e["code"], e["message"], e.get("details")) for e in response["errors"]
        ]
        assert len(sent) == 1, "a 400 is not retried"
        return

    result, path_params = _invoke(seller_client, grantless_client, op, example)
    sent = fake_amazon.api_requests()
    first = sent[0]
    assert first.method == operation.method
    assert first.path == path_template.format(**path_params)
    assert first.query == _expected_query(op, example)
    assert _normal(first.body) == _normal(_expected_body(op, example))
    token_kind = "grantless" if operation.grantless else "seller"
    assert first.headers["x-amz-access-token"].startswith(f"Atza|{token_kind}-")
    assert first.headers["user-agent"].startswith("spreports/")
    assert first.headers["user-agent"].endswith("(Language=Python)")

    if op == "getReports":
        # The next page is asked for with nextToken alone.
        assert [s.query for s in sent[1:]] == [{"nextToken": response["nextToken"]}]
        assert _normal(_dump(result)) == _normal(response["reports"])
    elif response is None or response == {}:
        assert result is None
    elif "payload" in response:
        assert _normal(_dump(result)) == _normal(response["payload"])
    elif op == "createReport":
        assert result == response["reportId"]
    elif op == "createReportSchedule":
        assert result == response["reportScheduleId"]
    elif op == "getReportSchedules":
        assert _normal(_dump(result)) == _normal(response["reportSchedules"])
    else:
        assert _normal(_dump(result)) == _normal(response)
