"""The Amazon users fight, as the simulator plays it: each behaviour switchable, each answer valid per Amazon's models.

Vendor accounts and old-style notifications, notifications late and ten times over, reports stuck
IN_QUEUE, FATAL reports with an ``errorDetails`` document, restricted data tokens only for a document's
exact path, unknown ids answered 400 ``InvalidInput``, application-wide per-type limits, 413/415.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
import requests

from spreports.simulator import DocumentSpec, Faults, SellerAccount, Simulator, start_simulator
from tests.integration.simulator.test_notifications import receive
from tests.sim import lwa_token, quick_config, validate_notification, validate_response

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"
VENDOR = "amzn1.vg.6213651"


def _call(sim: Simulator, operation: str, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
    response = requests.request(method, sim.url + path, headers={"x-amz-access-token": token}, timeout=30, **kwargs)
    validate_response(operation, response)
    return response


def _finished(body: str) -> dict[str, Any]:
    finished: dict[str, Any] = json.loads(body)["payload"]["reportProcessingFinishedNotification"]
    return finished


# --- accounts and notifications ---------------------------------------------------------------------


def test_a_vendor_groups_notification_has_an_account_id_and_no_seller_id(sqs_queue_url: str) -> None:
    with start_simulator(quick_config(sellers=(SellerAccount(VENDOR, "Atzr|vendor-refresh-token"),))) as sim:
        sim.subscribe_queue(sqs_queue_url)
        sim.add_document(DocumentSpec(size=10), notify=True)
        [body] = receive(sqs_queue_url, 1)
    finished = _finished(json.dumps(validate_notification(body)))
    assert finished["accountId"] == VENDOR and "sellerId" not in finished


def test_legacy_notifications_carry_a_seller_id_and_no_account_id(simulator: Simulator, sqs_queue_url: str) -> None:
    simulator.subscribe_queue(sqs_queue_url)
    simulator.set_faults(legacy_notifications=1)
    simulator.add_document(DocumentSpec(size=10), notify=True)
    simulator.add_document(DocumentSpec(size=10), notify=True)
    bodies = [_finished(b) for b in receive(sqs_queue_url, 2)]
    assert sorted("accountId" in b for b in bodies) == [False, True]
    assert all(b["sellerId"] == simulator.seller_id for b in bodies)


def test_a_notification_repeated_ten_times(simulator: Simulator, sqs_queue_url: str) -> None:
    simulator.subscribe_queue(sqs_queue_url)
    simulator.set_faults(repeated_notifications=1)
    simulator.add_document(DocumentSpec(size=10), notify=True)
    simulator.add_document(DocumentSpec(size=10), notify=True)
    bodies = [validate_notification(b) for b in receive(sqs_queue_url, 11)]
    ids = [b["notificationMetadata"]["notificationId"] for b in bodies]
    assert len(ids) == 11 and sorted(ids.count(i) for i in set(ids)) == [1, 10]


def test_late_notifications_arrive_after_the_simulated_delay(sqs_queue_url: str) -> None:
    # The test moves the clock: a simulated millisecond per real second, so a busy machine's seconds between
    # the late notification and the jumps below do not count (at real speed they pushed 599 s past 600).
    with start_simulator(quick_config(speed=1e-3)) as simulator:
        simulator.subscribe_queue(sqs_queue_url)
        simulator.set_faults(late_notifications=1, late_seconds=600.0)
        late = simulator.add_document(DocumentSpec(size=10), notify=True)
        on_time = simulator.add_document(DocumentSpec(size=10), notify=True)
        [first] = receive(sqs_queue_url, 1)
        assert _finished(first)["reportDocumentId"] == on_time
        assert simulator.notifier.pending_late() == 1
        simulator.advance(599)
        assert simulator.notifier.pending_late() == 1
        simulator.advance(2)
        [second] = receive(sqs_queue_url, 1)
        assert _finished(validate_notification(second) and second)["reportDocumentId"] == late


def test_queued_reports_stay_in_queue_until_cancelled(simulator: Simulator) -> None:
    token = lwa_token(simulator)
    simulator.set_faults(Faults(queued_reports=1))
    body = {"reportType": LISTINGS, "marketplaceIds": ["ATVPDKIKX0DER"]}
    report_id = _call(simulator, "createReport", "POST", "/reports/2021-06-30/reports", token, json=body).json()[
        "reportId"
    ]
    simulator.advance(6 * 3600)
    assert simulator.report(report_id)["processingStatus"] == "IN_QUEUE"
    token = lwa_token(simulator)  # the first one expired in those hours
    _call(simulator, "cancelReport", "DELETE", f"/reports/2021-06-30/reports/{report_id}", token)
    report = _call(simulator, "getReport", "GET", f"/reports/2021-06-30/reports/{report_id}", token).json()
    assert report.get("processingStatus") == "CANCELLED", report


# --- restricted data tokens and unknown ids ----------------------------------------------------------

RESTRICTED = "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING"
DOCUMENTS = "/reports/2021-06-30/documents"


def _rdt(sim: Simulator, token: str, path: str) -> requests.Response:
    body = {"restrictedResources": [{"method": "GET", "path": path}]}
    return _call(sim, "createRestrictedDataToken", "POST", "/tokens/2021-03-01/restrictedDataToken", token, json=body)


def test_a_restricted_data_token_only_for_the_documents_own_path(simulator: Simulator) -> None:
    token = lwa_token(simulator)
    restricted = simulator.add_document(DocumentSpec(report_type=RESTRICTED, size=100))
    plain = simulator.add_document(DocumentSpec(size=100))
    # Without a token: 403; the generic path, a non-restricted document, an unknown one: 400 as Amazon answers.
    assert _call(simulator, "getReportDocument", "GET", f"{DOCUMENTS}/{restricted}", token).status_code == 403
    for path in (
        f"{DOCUMENTS}/{{reportDocumentId}}",
        f"{DOCUMENTS}/{plain}",
        f"{DOCUMENTS}/nope",
        "/reports/2021-06-30/reports",
    ):
        refused = _rdt(simulator, token, path)
        assert refused.status_code == 400, path
        assert refused.json()["errors"] == [
            {"code": "InvalidInput", "message": "Invalid or unsupported document ID found", "details": ""}
        ]
    rdt = _rdt(simulator, token, f"{DOCUMENTS}/{restricted}").json()["restrictedDataToken"]
    assert _call(simulator, "getReportDocument", "GET", f"{DOCUMENTS}/{restricted}", rdt).status_code == 200
    # The token is for that path only.
    other = simulator.add_document(DocumentSpec(report_type=RESTRICTED, size=100))
    assert _call(simulator, "getReportDocument", "GET", f"{DOCUMENTS}/{other}", rdt).status_code == 403


def test_lenient_restricted_tokens_when_switched_off() -> None:
    with start_simulator(quick_config(strict_restricted_tokens=False)) as sim:
        plain = sim.add_document(DocumentSpec(size=100))
        assert _rdt(sim, lwa_token(sim), f"{DOCUMENTS}/{plain}").status_code == 200


@pytest.mark.parametrize(("strict", "status", "code"), [(True, 400, "InvalidInput"), (False, 404, "NotFound")])
def test_unknown_ids(strict: bool, status: int, code: str) -> None:
    with start_simulator(quick_config(unknown_ids_invalid=strict)) as sim:
        token = lwa_token(sim)
        for operation, path in (
            ("getReport", "/reports/2021-06-30/reports/12345"),
            ("getReportDocument", f"{DOCUMENTS}/nope"),
        ):
            answer = _call(sim, operation, "GET", path, token)
            assert answer.status_code == status and answer.json()["errors"][0]["code"] == code


# --- FATAL reports ----------------------------------------------------------------------------------


@pytest.mark.parametrize("documents", [True, False])
def test_fatal_reports_carry_an_error_details_document_when_switched_on(documents: bool) -> None:
    with start_simulator(quick_config(fatal_error_documents=documents)) as sim:
        token = lwa_token(sim)
        body = {"reportType": LISTINGS, "marketplaceIds": ["ATVPDKIKX0DER"]}
        report_id = _call(sim, "createReport", "POST", "/reports/2021-06-30/reports", token, json=body).json()[
            "reportId"
        ]
        sim.finish_report(report_id, "FATAL")
        report = _call(sim, "getReport", "GET", f"/reports/2021-06-30/reports/{report_id}", token).json()
        assert report["processingStatus"] == "FATAL"
        if not documents:
            assert "reportDocumentId" not in report
            return
        located = _call(sim, "getReportDocument", "GET", f"{DOCUMENTS}/{report['reportDocumentId']}", token).json()
        download = requests.get(located["url"], timeout=30)
        assert download.headers["Content-Type"].startswith("application/json")
        error = json.loads(
            gzip.decompress(download.content) if located.get("compressionAlgorithm") else download.content
        )
        assert set(error) == {"errorDetails"} and error["errorDetails"]
