"""Reports API 2021-06-30 on the simulator: every operation, success and errors, checked against the model."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from spreports.simulator import Outcomes, Simulator, start_simulator
from tests.sim import lwa_token, quick_config, validate_response

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
US, DE = "ATVPDKIKX0DER", "A1PA6795UKMFR9"


class Api:
    """Plain requests calls, written from the model."""

    def __init__(self, sim: Simulator, token: str) -> None:
        self.base = sim.url
        self.headers = {"x-amz-access-token": token, "User-Agent": "tests/1.0 (Language=Python)"}

    def call(self, operation: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = requests.request(method, self.base + path, headers=self.headers, timeout=30, **kwargs)
        validate_response(operation, response)
        return response


@pytest.fixture
def api(simulator: Simulator) -> Api:
    return Api(simulator, lwa_token(simulator))


def wait_status(api: Api, report_id: str, wanted: tuple[str, ...] = ("DONE", "CANCELLED", "FATAL")) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        report: dict[str, Any] = api.call("getReport", "GET", f"/reports/2021-06-30/reports/{report_id}").json()
        if report["processingStatus"] in wanted or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


def test_create_report_then_it_goes_through_its_phases_to_done(api: Api) -> None:
    created = api.call(
        "createReport", "POST", "/reports/2021-06-30/reports", json={"reportType": LISTINGS, "marketplaceIds": [US]}
    )
    assert created.status_code == 202
    report_id = created.json()["reportId"]
    first = api.call("getReport", "GET", f"/reports/2021-06-30/reports/{report_id}").json()
    assert first["processingStatus"] in ("IN_QUEUE", "IN_PROGRESS", "DONE")
    done = wait_status(api, report_id)
    assert done["processingStatus"] == "DONE"
    assert done["reportDocumentId"] and done["processingEndTime"] >= done["processingStartTime"] >= done["createdTime"]
    document = api.call("getReportDocument", "GET", f"/reports/2021-06-30/documents/{done['reportDocumentId']}").json()
    assert document["compressionAlgorithm"] == "GZIP"


@pytest.mark.parametrize(
    "body",
    [
        {"marketplaceIds": [US]},
        {"reportType": LISTINGS},
        {"reportType": LISTINGS, "marketplaceIds": []},
        {"reportType": LISTINGS, "marketplaceIds": [US], "dataStartTime": "not a date"},
        {"reportType": LISTINGS, "marketplaceIds": [US], "dataEndTime": "2999-01-01T00:00:00Z"},
        {"reportType": LISTINGS, "marketplaceIds": [US], "reportOptions": {"a": 1}},
    ],
)
def test_create_report_rejects_bad_input(api: Api, body: dict[str, Any]) -> None:
    response = api.call("createReport", "POST", "/reports/2021-06-30/reports", json=body)
    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "InvalidInput"


def test_get_reports_pages_with_a_next_token_that_must_be_alone(api: Api) -> None:
    ids = {
        api.call(
            "createReport", "POST", "/reports/2021-06-30/reports", json={"reportType": LISTINGS, "marketplaceIds": [US]}
        ).json()["reportId"]
        for _ in range(5)
    }
    seen: list[str] = []
    page = api.call(
        "getReports", "GET", "/reports/2021-06-30/reports", params={"reportTypes": LISTINGS, "pageSize": 2}
    ).json()
    seen += [r["reportId"] for r in page["reports"]]
    while "nextToken" in page:
        mixed = api.call(
            "getReports", "GET", "/reports/2021-06-30/reports", params={"nextToken": page["nextToken"], "pageSize": 2}
        )
        assert mixed.status_code == 400
        page = api.call(
            "getReports", "GET", "/reports/2021-06-30/reports", params={"nextToken": page["nextToken"]}
        ).json()
        seen += [r["reportId"] for r in page["reports"]]
    assert sorted(seen) == sorted(ids) and len(seen) == 5


def test_get_reports_filters_and_its_errors(api: Api) -> None:
    api.call(
        "createReport", "POST", "/reports/2021-06-30/reports", json={"reportType": LISTINGS, "marketplaceIds": [DE]}
    )
    assert (
        api.call(
            "getReports", "GET", "/reports/2021-06-30/reports", params={"reportTypes": LISTINGS, "marketplaceIds": US}
        ).json()["reports"]
        == []
    )
    assert (
        len(
            api.call(
                "getReports",
                "GET",
                "/reports/2021-06-30/reports",
                params={"reportTypes": f"{LISTINGS},X_Y", "marketplaceIds": f"{US},{DE}"},
            ).json()["reports"]
        )
        == 1
    )
    assert (
        api.call(
            "getReports",
            "GET",
            "/reports/2021-06-30/reports",
            params={"reportTypes": LISTINGS, "processingStatuses": "FATAL"},
        ).json()["reports"]
        == []
    )
    missing = api.call("getReports", "GET", "/reports/2021-06-30/reports")
    assert missing.status_code == 400 and missing.json()["errors"][0]["details"] == "reportTypes;"
    for params in ({"reportTypes": LISTINGS, "processingStatuses": "BAD_VALUE"}, {"reportTypes": LISTINGS, "pageSize": 101},
                   {"nextToken": "never-issued"}, {"reportTypes": LISTINGS, "createdSince": "yesterday"}):  # fmt: skip
        assert api.call("getReports", "GET", "/reports/2021-06-30/reports", params=params).status_code == 400


def test_cancel_report_only_in_queue_and_unknown_ids_are_invalid_input(simulator: Simulator) -> None:
    sim = start_simulator(quick_config(outcomes=Outcomes(queue_seconds=3600, processing_seconds=1)))
    try:
        api = Api(sim, lwa_token(sim))
        report_id = api.call(
            "createReport", "POST", "/reports/2021-06-30/reports", json={"reportType": LISTINGS, "marketplaceIds": [US]}
        ).json()["reportId"]
        cancelled = api.call("cancelReport", "DELETE", f"/reports/2021-06-30/reports/{report_id}")
        assert cancelled.status_code == 200 and cancelled.content == b""
        assert (
            api.call("getReport", "GET", f"/reports/2021-06-30/reports/{report_id}").json()["processingStatus"]
            == "CANCELLED"
        )
        assert api.call("cancelReport", "DELETE", f"/reports/2021-06-30/reports/{report_id}").status_code == 400
        # Unknown ids: 400 InvalidInput, as Amazon answers (not the model's 404).
        for operation, method, path in (
            ("cancelReport", "DELETE", "/reports/2021-06-30/reports/404404"),
            ("getReport", "GET", "/reports/2021-06-30/reports/404404"),
            ("getReportDocument", "GET", "/reports/2021-06-30/documents/nope"),
        ):
            unknown = api.call(operation, method, path)
            assert unknown.status_code == 400 and unknown.json()["errors"][0]["code"] == "InvalidInput"
    finally:
        sim.stop()


def test_schedules_replace_same_type_and_marketplaces_and_fire_at_their_period(simulator: Simulator, api: Api) -> None:
    spec = {"reportType": LISTINGS, "marketplaceIds": [US, DE], "period": "PT15M"}
    first = api.call("createReportSchedule", "POST", "/reports/2021-06-30/schedules", json=spec)
    assert first.status_code == 201
    second = api.call(
        "createReportSchedule", "POST", "/reports/2021-06-30/schedules", json={**spec, "marketplaceIds": [DE, US]}
    ).json()
    other = api.call(
        "createReportSchedule", "POST", "/reports/2021-06-30/schedules", json={**spec, "marketplaceIds": [US]}
    ).json()
    listed = api.call(
        "getReportSchedules", "GET", "/reports/2021-06-30/schedules", params={"reportTypes": LISTINGS}
    ).json()
    assert {s["reportScheduleId"] for s in listed["reportSchedules"]} == {
        second["reportScheduleId"],
        other["reportScheduleId"],
    }
    assert (
        api.call(
            "getReportSchedule", "GET", f"/reports/2021-06-30/schedules/{first.json()['reportScheduleId']}"
        ).status_code
        == 404
    )
    schedule = api.call(
        "getReportSchedule", "GET", f"/reports/2021-06-30/schedules/{second['reportScheduleId']}"
    ).json()
    assert schedule["period"] == "PT15M"
    simulator.advance(30 * 60 + 1)  # two periods of both schedules
    reports = api.call("getReports", "GET", "/reports/2021-06-30/reports", params={"reportTypes": LISTINGS}).json()[
        "reports"
    ]
    by_schedule = [r.get("reportScheduleId") for r in reports]
    assert by_schedule.count(second["reportScheduleId"]) == 2 and by_schedule.count(other["reportScheduleId"]) == 2
    assert (
        api.call("cancelReportSchedule", "DELETE", f"/reports/2021-06-30/schedules/{other['reportScheduleId']}").content
        == b""
    )
    assert (
        api.call(
            "cancelReportSchedule", "DELETE", f"/reports/2021-06-30/schedules/{other['reportScheduleId']}"
        ).status_code
        == 404
    )


@pytest.mark.parametrize(
    "body",
    [{"reportType": LISTINGS, "marketplaceIds": [US], "period": "PT7M"}, {"reportType": LISTINGS, "period": "PT5M"}],
)
def test_schedule_errors(api: Api, body: dict[str, Any]) -> None:
    assert api.call("createReportSchedule", "POST", "/reports/2021-06-30/schedules", json=body).status_code == 400
    assert api.call("getReportSchedules", "GET", "/reports/2021-06-30/schedules").status_code == 400


def test_outcome_odds_give_fatal_with_an_error_document_and_cancelled_without() -> None:
    for status, outcomes in (("FATAL", Outcomes(done=0, fatal=1, queue_seconds=0, processing_seconds=0)),
                             ("CANCELLED", Outcomes(done=0, cancelled=1, queue_seconds=0, processing_seconds=0))):  # fmt: skip
        sim = start_simulator(quick_config(outcomes=outcomes))
        try:
            api = Api(sim, lwa_token(sim))
            report_id = api.call(
                "createReport",
                "POST",
                "/reports/2021-06-30/reports",
                json={"reportType": LISTINGS, "marketplaceIds": [US]},
            ).json()["reportId"]
            report = wait_status(api, report_id)
            assert report["processingStatus"] == status
            # A FATAL report has its error document (errorDetails); a CANCELLED one has none.
            assert ("reportDocumentId" in report) == (status == "FATAL")
        finally:
            sim.stop()


def test_auth_errors_are_403_with_the_error_list(simulator: Simulator, api: Api) -> None:
    path = "/reports/2021-06-30/reports?reportTypes=" + LISTINGS
    for headers in (
        {},
        {"x-amz-access-token": "Atza|made-up"},
        {"x-amz-access-token": lwa_token(simulator, grantless=True)},
    ):
        response = requests.get(simulator.url + path, headers=headers, timeout=30)
        validate_response("getReports", response)
        assert response.status_code == 403 and response.json()["errors"][0]["code"] == "Unauthorized"
    simulator.advance(simulator.config.token_lifetime + 1)
    expired = requests.get(simulator.url + path, headers=api.headers, timeout=30)
    assert expired.status_code == 403 and "expired" in expired.json()["errors"][0]["details"]
