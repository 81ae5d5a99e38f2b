"""Login with Amazon on the simulator: both grants, several sellers, lifetimes and the real error bodies."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests

from spreports.simulator import SellerAccount, Simulator, start_simulator
from tests.sim import quick_config

SELLERS = (SellerAccount("A1FIRST", "Atzr|first"), SellerAccount("A2SECOND", "Atzr|second", ("A1PA6795UKMFR9",)))


@pytest.fixture
def two_sellers() -> Iterator[Simulator]:
    sim = start_simulator(quick_config(sellers=SELLERS, token_lifetime=600.0))
    yield sim
    sim.stop()


def post(sim: Simulator, **form: str) -> requests.Response:
    return requests.post(
        sim.token_url, data={"client_id": sim.client_id, "client_secret": sim.client_secret, **form}, timeout=30
    )


def test_refresh_token_grant_for_each_seller(two_sellers: Simulator) -> None:
    for seller_id, refresh in two_sellers.refresh_tokens.items():
        answer = post(two_sellers, grant_type="refresh_token", refresh_token=refresh)
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
        body = answer.json()
        assert body["token_type"] == "bearer" and body["expires_in"] == 600 and body["refresh_token"] == refresh
        assert body["access_token"].startswith("Atza|") and len(body["access_token"]) <= 2048
        reports = requests.get(f"{two_sellers.url}/reports/2021-06-30/reports", params={"reportTypes": "X_Y"},
                               headers={"x-amz-access-token": body["access_token"]}, timeout=30)  # fmt: skip
        assert reports.status_code == 200
        assert two_sellers.requests("getReports")[-1].seller_id == seller_id


def test_client_credentials_grant_and_json_bodies(two_sellers: Simulator) -> None:
    answer = requests.post(two_sellers.token_url, timeout=30, json={
        "grant_type": "client_credentials", "scope": "sellingpartnerapi::notifications",
        "client_id": two_sellers.client_id, "client_secret": two_sellers.client_secret,
    })  # fmt: skip
    assert answer.status_code == 200 and answer.json()["scope"] == "sellingpartnerapi::notifications"
    destinations = requests.get(f"{two_sellers.url}/notifications/v1/destinations",
                                headers={"x-amz-access-token": answer.json()["access_token"]}, timeout=30)  # fmt: skip
    assert destinations.status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({}, 400, "invalid_request"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": "refresh_token"}, 400, "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": "Atzr|unknown"}, 400, "invalid_grant"),
        ({"grant_type": "client_credentials", "scope": "profile"}, 400, "invalid_scope"),
        (
            {"grant_type": "refresh_token", "refresh_token": "Atzr|first", "client_secret": "wrong"},
            401,
            "invalid_client",
        ),
    ],
)
def test_error_bodies(two_sellers: Simulator, form: dict[str, str], status: int, error: str) -> None:
    answer = post(two_sellers, **form)
    assert answer.status_code == status
    body = answer.json()
    assert body["error"] == error and body["error_description"]
    assert answer.headers["x-amzn-RequestId"]


def test_tokens_expire_on_the_simulated_clock(two_sellers: Simulator) -> None:
    token = post(two_sellers, grant_type="refresh_token", refresh_token="Atzr|first").json()["access_token"]
    url = f"{two_sellers.url}/reports/2021-06-30/reports?reportTypes=X_Y"
    two_sellers.advance(590)  # leaves 10 simulated seconds for a slow machine
    assert requests.get(url, headers={"x-amz-access-token": token}, timeout=30).status_code == 200
    two_sellers.advance(11)
    expired = requests.get(url, headers={"x-amz-access-token": token}, timeout=30)
    assert (
        expired.status_code == 403
        and expired.json()["errors"][0]["details"] == "The access token you provided has expired."
    )


def test_expires_in_is_counted_in_real_seconds_at_speed() -> None:
    sim = start_simulator(quick_config(speed=60.0))
    try:
        assert (
            post(sim, grant_type="refresh_token", refresh_token=sim.refresh_tokens[sim.seller_id]).json()["expires_in"]
            == 60
        )
    finally:
        sim.stop()


def test_no_secret_token_or_presigned_url_is_logged_or_recorded(
    two_sellers: Simulator, caplog: pytest.LogCaptureFixture
) -> None:
    from spreports.simulator import DocumentSpec

    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # a CLI test in this process may have raised it
    token = post(two_sellers, grant_type="refresh_token", refresh_token="Atzr|first").json()["access_token"]
    document_id = two_sellers.add_document(DocumentSpec(size=100), seller_id="A1FIRST")
    answer = requests.get(
        f"{two_sellers.url}/reports/2021-06-30/documents/{document_id}",
        headers={"x-amz-access-token": token},
        timeout=30,
    )
    url = answer.json()["url"]
    requests.get(url, timeout=30)
    log = requests.get(f"{two_sellers.url}/_sim/requests", timeout=30).text
    signature = url.split("X-Amz-Signature=")[1]
    # urllib3 (the client side of this test) logs request lines at DEBUG; the simulator's own loggers must not.
    server_side = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("urllib3"))
    assert any(r.name.startswith("urllib3") for r in caplog.records)  # logging was on
    for secret in (token, "Atzr|first", two_sellers.client_secret, signature):
        assert secret not in server_side
        assert secret not in log
