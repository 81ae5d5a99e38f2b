"""Amazon's limits as the simulator plays them over HTTP: Sales and Traffic takes one marketplace, reports
are kept 90 days, and a schedule given a past start is moved on rather than made to catch up."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import requests

from spreports.simulator import Simulator
from spreports.simulator.clock import iso
from tests.sim import lwa_token, validate_response

SALES = "GET_SALES_AND_TRAFFIC_REPORT"
LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
REPORTS = "/reports/2021-06-30/reports"
DAY = 86400


def _call(sim: Simulator, operation: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"x-amz-access-token": lwa_token(sim)}
    response = requests.request(method, sim.url + path, headers=headers, timeout=30, **kwargs)
    validate_response(operation, response)
    return response


def _error(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 400, response.text
    [error] = response.json()["errors"]
    assert error["code"] == "InvalidInput"
    return dict(error)


def test_sales_and_traffic_with_several_marketplaces_is_rejected(simulator: Simulator) -> None:
    body = {"reportType": SALES, "marketplaceIds": [US, CA]}
    error = _error(_call(simulator, "createReport", "POST", REPORTS, json=body))
    assert error["message"].startswith("Report rejected for this client. Multiple marketplaces")
    assert simulator.world.reports == {}
    # One marketplace is fine, and other types take several.
    assert _call(simulator, "createReport", "POST", REPORTS, json={**body, "marketplaceIds": [US]}).status_code == 202
    listings = {"reportType": LISTINGS, "marketplaceIds": [US, CA]}
    assert _call(simulator, "createReport", "POST", REPORTS, json=listings).status_code == 202


def test_reports_older_than_90_days_are_gone(simulator: Simulator) -> None:
    created = _call(simulator, "createReport", "POST", REPORTS, json={"reportType": LISTINGS, "marketplaceIds": [US]})
    old = created.json()["reportId"]
    simulator.advance(60 * DAY)
    recent = _call(simulator, "createReport", "POST", REPORTS, json={"reportType": LISTINGS, "marketplaceIds": [US]})
    simulator.advance(31 * DAY)  # the first report is 91 days old now, the second 31

    listed = _call(simulator, "getReports", "GET", REPORTS, params={"reportTypes": LISTINGS, "pageSize": 100})
    assert [r["reportId"] for r in listed.json()["reports"]] == [recent.json()["reportId"]]
    gone = _error(_call(simulator, "getReport", "GET", f"{REPORTS}/{old}"))
    assert gone["message"] == f"Invalid reportId {old}"
    assert _call(simulator, "getReport", "GET", f"{REPORTS}/{recent.json()['reportId']}").status_code == 200

    too_early = iso(simulator.world.clock.now() - timedelta(days=91))
    params = {"reportTypes": LISTINGS, "createdSince": too_early}
    assert _error(_call(simulator, "getReports", "GET", REPORTS, params=params))["details"] == "createdSince;"
    within = iso(simulator.world.clock.now() - timedelta(days=89))
    assert _call(simulator, "getReports", "GET", REPORTS, params={**params, "createdSince": within}).ok


def test_a_schedule_with_a_past_start_runs_next_in_the_future_without_catching_up(simulator: Simulator) -> None:
    now = simulator.world.clock.now()
    body = {"reportType": LISTINGS, "marketplaceIds": [US], "period": "PT1H",
            "nextReportCreationTime": iso(now - timedelta(hours=100, minutes=30))}  # fmt: skip
    created = _call(simulator, "createReportSchedule", "POST", "/reports/2021-06-30/schedules", json=body)
    schedule_id = created.json()["reportScheduleId"]
    path = f"/reports/2021-06-30/schedules/{schedule_id}"
    first = _call(simulator, "getReportSchedule", "GET", path).json()["nextReportCreationTime"]
    assert iso(now) < first
    assert first <= iso(now + timedelta(hours=1))
    simulator.advance(60)  # ticks the world: nothing is due before the next run
    listed = _call(simulator, "getReports", "GET", REPORTS, params={"reportTypes": LISTINGS})
    assert listed.json()["reports"] == []  # not one report per missed hour
    simulator.advance(3600)
    listed = _call(simulator, "getReports", "GET", REPORTS, params={"reportTypes": LISTINGS})
    assert [r["createdTime"] for r in listed.json()["reports"]] == [first]
