"""Settlement reports: Amazon makes them itself, so createReport and createReportSchedule refuse them (400)."""

from __future__ import annotations

import requests

from spreports.simulator import Simulator, start_simulator
from tests.sim import lwa_token, quick_config, validate_response

SETTLEMENT = "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2"
US = ["ATVPDKIKX0DER"]


def _post(sim: Simulator, operation: str, path: str, body: dict[str, object]) -> requests.Response:
    answer = requests.post(sim.url + path, json=body, headers={"x-amz-access-token": lwa_token(sim)}, timeout=30)
    validate_response(operation, answer)
    return answer


def test_settlement_reports_cannot_be_requested_or_scheduled(simulator: Simulator) -> None:
    refused = _post(
        simulator, "createReport", "/reports/2021-06-30/reports", {"reportType": SETTLEMENT, "marketplaceIds": US}
    )
    assert refused.status_code == 400
    [error] = refused.json()["errors"]
    assert error["code"] == "InvalidInput" and SETTLEMENT in error["message"]
    body = {"reportType": SETTLEMENT, "marketplaceIds": US, "period": "P1D"}
    assert _post(simulator, "createReportSchedule", "/reports/2021-06-30/schedules", body).status_code == 400
    assert simulator.world.reports == {} and simulator.world.schedules == {}


def test_the_refusal_is_switchable() -> None:
    with start_simulator(quick_config(unrequestable_report_types=frozenset())) as sim:
        body = {"reportType": SETTLEMENT, "marketplaceIds": US}
        assert _post(sim, "createReport", "/reports/2021-06-30/reports", body).status_code == 202
