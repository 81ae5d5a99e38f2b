"""Each fault of the simulator happens exactly as configured (by the Python API or POST /_sim/faults)."""

from __future__ import annotations

import gzip
import zlib

import pytest
import requests

from spreports.simulator import DocumentSpec, Faults, Simulator, start_simulator
from tests.sim import lwa_token, quick_config, validate_response

LISTINGS = "GET_MERCHANT_LISTINGS_ALL_DATA"


def get_report_calls(sim: Simulator, token: str, count: int) -> list[requests.Response]:
    url = f"{sim.url}/reports/2021-06-30/reports"
    out = []
    for _ in range(count):
        response = requests.get(
            url, params={"reportTypes": LISTINGS}, headers={"x-amz-access-token": token}, timeout=30
        )
        validate_response("getReports", response)
        out.append(response)
    return out


def document_url(sim: Simulator, document_id: str, token: str) -> dict[str, str]:
    response = requests.get(
        f"{sim.url}/reports/2021-06-30/documents/{document_id}", headers={"x-amz-access-token": token}, timeout=30
    )
    body: dict[str, str] = validate_response("getReportDocument", response)
    return body


def test_429_storm_through_the_control_endpoint(simulator: Simulator) -> None:
    token = lwa_token(simulator)
    set_faults = requests.post(f"{simulator.url}/_sim/faults", json={"throttle": 3}, timeout=30)
    assert set_faults.json()["throttle"] == 3
    statuses = [r.status_code for r in get_report_calls(simulator, token, 5)]
    assert statuses == [429, 429, 429, 200, 200]
    throttled = simulator.requests("getReports")[0]
    assert throttled.status == 429
    assert requests.get(f"{simulator.url}/_sim/faults", timeout=30).json()["throttle"] == 0


def test_server_errors_limited_to_named_operations(simulator: Simulator) -> None:
    token = lwa_token(simulator)
    simulator.set_faults(server_errors=2, server_error_status=500, fault_operations=["getReportDocument"])
    assert [r.status_code for r in get_report_calls(simulator, token, 2)] == [200, 200]
    document_id = simulator.add_document(DocumentSpec(size=100))
    url = f"{simulator.url}/reports/2021-06-30/documents/{document_id}"
    statuses = []
    for _ in range(3):
        response = requests.get(url, headers={"x-amz-access-token": token}, timeout=30)
        validate_response("getReportDocument", response)
        statuses.append(response.status_code)
    assert statuses == [500, 500, 200]
    simulator.set_faults(server_errors=1, server_error_status=503, fault_operations=[])
    assert [r.status_code for r in get_report_calls(simulator, token, 1)] == [503]


def test_control_endpoint_rejects_unknown_faults(simulator: Simulator) -> None:
    response = requests.post(f"{simulator.url}/_sim/faults", json={"nonsense": 1}, timeout=30)
    assert response.status_code == 400 and "unknown fault" in response.json()["error"]
    assert requests.post(f"{simulator.url}/_sim/faults", json={"throttle": -1}, timeout=30).status_code == 400
    with pytest.raises(ValueError):
        simulator.set_faults(server_error_status=404)


def test_rate_limits_enforce_burst_then_refill_with_the_clock() -> None:
    sim = start_simulator(quick_config(rate_limits=True))
    try:
        token = lwa_token(sim)
        statuses = [r.status_code for r in get_report_calls(sim, token, 11)]  # getReports: burst 10, 0.0222/s
        assert statuses == [200] * 10 + [429]
        throttled = get_report_calls(sim, token, 1)[0]
        assert throttled.json()["errors"][0]["code"] == "QuotaExceeded"
        assert "x-amzn-RateLimit-Limit" not in throttled.headers
        sim.advance(46)  # one token per 45 s
        assert [r.status_code for r in get_report_calls(sim, token, 2)] == [200, 429]
        sim.set_rate_limits(False)
        assert [r.status_code for r in get_report_calls(sim, token, 3)] == [200, 200, 200]
    finally:
        sim.stop()


def test_rate_header_is_scaled_with_the_speed() -> None:
    sim = start_simulator(quick_config(speed=60.0))
    try:
        response = get_report_calls(sim, lwa_token(sim), 1)[0]
        assert float(response.headers["x-amzn-RateLimit-Limit"]) == pytest.approx(0.0222 * 60)
    finally:
        sim.stop()


def test_expired_urls(simulator: Simulator) -> None:
    token = lwa_token(simulator)
    document_id = simulator.add_document(DocumentSpec(size=100))
    simulator.set_faults(expired_urls=1)
    assert requests.get(document_url(simulator, document_id, token)["url"], timeout=30).status_code == 403
    assert requests.get(document_url(simulator, document_id, token)["url"], timeout=30).status_code == 200


def test_truncated_gzip_is_a_complete_http_answer_with_an_incomplete_gzip(simulator: Simulator) -> None:
    token = lwa_token(simulator)
    document_id = simulator.add_document(DocumentSpec(size=200_000))
    simulator.set_faults(truncated_gzip=1)
    cut = requests.get(document_url(simulator, document_id, token)["url"], timeout=30)
    assert cut.status_code == 200 and len(cut.content) == int(cut.headers["Content-Length"])
    with pytest.raises((EOFError, zlib.error, gzip.BadGzipFile)):
        gzip.decompress(cut.content)
    whole = requests.get(document_url(simulator, document_id, token)["url"], timeout=30)
    assert gzip.decompress(whole.content)


def test_mislabelled_compression_both_ways(simulator: Simulator) -> None:
    token = lwa_token(simulator)
    gz_doc = simulator.add_document(DocumentSpec(size=5000, gzip=True))
    plain_doc = simulator.add_document(DocumentSpec(size=5000, gzip=False))
    simulator.set_faults(gzip_declared_plain=1, plain_declared_gzip=1)
    declared_gzip = document_url(simulator, gz_doc, token)
    assert declared_gzip["compressionAlgorithm"] == "GZIP"
    assert requests.get(declared_gzip["url"], timeout=30).content.startswith(b"item-name")
    declared_plain = document_url(simulator, plain_doc, token)
    assert "compressionAlgorithm" not in declared_plain
    assert requests.get(declared_plain["url"], timeout=30).content[:2] == b"\x1f\x8b"
    by_spec = simulator.add_document(DocumentSpec(size=5000, gzip=False, mislabel="plain_declared_gzip"))
    assert requests.get(document_url(simulator, by_spec, token)["url"], timeout=30).content[:2] == b"\x1f\x8b"


def test_dropped_connection_cuts_the_body(simulator: Simulator) -> None:
    token = lwa_token(simulator)
    document_id = simulator.add_document(DocumentSpec(size=2_000_000, gzip=False))
    simulator.set_faults(dropped_connections=1)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        requests.get(document_url(simulator, document_id, token)["url"], timeout=30).raise_for_status()
    assert len(requests.get(document_url(simulator, document_id, token)["url"], timeout=30).content) > 1_000_000


def test_slow_bodies_stall_past_a_read_timeout(simulator: Simulator) -> None:
    token = lwa_token(simulator)
    document_id = simulator.add_document(DocumentSpec(size=2_000_000, gzip=False))
    simulator.set_faults(slow_responses=1, slow_seconds=3.0)
    url = document_url(simulator, document_id, token)["url"]  # the API call took the slow fault itself
    assert simulator.faults.slow_responses == 0
    simulator.set_faults(slow_responses=1)
    # requests reports a read timeout in the middle of a body as a ConnectionError
    with (
        pytest.raises(requests.exceptions.ConnectionError),
        requests.get(url, stream=True, timeout=(5, 0.5)) as response,
    ):
        for _ in response.iter_content(64 * 1024):
            pass


def test_stuck_reports_stay_in_progress_until_finished(simulator: Simulator) -> None:
    token = lwa_token(simulator)
    simulator.set_faults(Faults(stuck_reports=1))
    created = requests.post(f"{simulator.url}/reports/2021-06-30/reports", headers={"x-amz-access-token": token},
                            json={"reportType": LISTINGS, "marketplaceIds": ["ATVPDKIKX0DER"]}, timeout=30)  # fmt: skip
    report_id = created.json()["reportId"]
    simulator.advance(3600)  # ticks synchronously: past the queue phase and far past processing
    assert simulator.report(report_id)["processingStatus"] == "IN_PROGRESS"
    finished = requests.post(
        f"{simulator.url}/_sim/reports/{report_id}/finish", json={"status": "DONE"}, timeout=30
    ).json()
    assert finished["processingStatus"] == "DONE" and finished["reportDocumentId"]
