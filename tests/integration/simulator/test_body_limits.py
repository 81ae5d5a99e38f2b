"""Bodies Amazon refuses: 413 for one too large (where the model declares it), 415 for one not in JSON.

Each refusal is switchable and valid against Amazon's models; the product's client turns each into a
permanent :class:`~spreports.errors.InvalidRequest` that says what was wrong, after one request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from requests.adapters import HTTPAdapter

from spreports.errors import InvalidRequest
from spreports.simulator import Simulator, start_simulator
from spreports.spapi import SpapiClient
from tests.sim import lwa_token, quick_config, simulator_settings, validate_response

ARN = "arn:aws:sqs:us-east-1:123456789012:reports"
REPORT = {"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": ["ATVPDKIKX0DER"]}
PADDING = "x" * (70 * 1024)  # over the simulator's default limit of 64 KiB


def _post(sim: Simulator, operation: str, path: str, token: str, body: bytes, content_type: str) -> requests.Response:
    headers = {"x-amz-access-token": token, "Content-Type": content_type}
    response = requests.post(sim.url + path, data=body, headers=headers, timeout=30)
    validate_response(operation, response)
    return response


def _destination(name: str, **extra: Any) -> bytes:
    return json.dumps({"name": name, "resourceSpecification": {"sqs": {"arn": ARN}}, **extra}).encode()


def test_an_oversized_body_answers_413_where_the_model_declares_it(simulator: Simulator) -> None:
    grantless = lwa_token(simulator, grantless=True)
    path = "/notifications/v1/destinations"
    refused = _post(
        simulator, "createDestination", path, grantless, _destination("d", padding=PADDING), "application/json"
    )
    assert refused.status_code == 413
    assert refused.json()["errors"][0]["message"] == "The request size exceeded the maximum accepted size."
    assert simulator.requests("createDestination")[-1].status == 413
    # The Reports model declares no 413: the simulator does not invent one there.
    report = _post(simulator, "createReport", "/reports/2021-06-30/reports", lwa_token(simulator),
                   json.dumps({**REPORT, "padding": PADDING}).encode(), "application/json")  # fmt: skip
    assert report.status_code == 202


def test_the_size_limit_is_switched_off_with_zero() -> None:
    with start_simulator(quick_config(max_body_bytes=0)) as sim:
        body = _destination("d", padding=PADDING)
        accepted = _post(sim, "createDestination", "/notifications/v1/destinations", lwa_token(sim, grantless=True),
                         body, "application/json")  # fmt: skip
        assert accepted.status_code == 200


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_that_is_not_json_answers_415(simulator: Simulator, content_type: str) -> None:
    token = lwa_token(simulator)
    refused = _post(simulator, "createReport", "/reports/2021-06-30/reports", token, json.dumps(REPORT).encode(),
                    content_type)  # fmt: skip
    assert refused.status_code == 415
    assert refused.json()["errors"][0]["message"] == "The request's Content-Type header is invalid."
    grantless = lwa_token(simulator, grantless=True)
    destination = _post(simulator, "createDestination", "/notifications/v1/destinations", grantless,
                        _destination("d"), content_type)  # fmt: skip
    assert destination.status_code == 415
    # A JSON content type with its charset is JSON.
    accepted = _post(simulator, "createReport", "/reports/2021-06-30/reports", token, json.dumps(REPORT).encode(),
                     "application/json; charset=utf-8")  # fmt: skip
    assert accepted.status_code == 202


def test_the_content_type_check_is_switchable() -> None:
    with start_simulator(quick_config(json_content_type=False)) as sim:
        accepted = _post(sim, "createReport", "/reports/2021-06-30/reports", lwa_token(sim),
                         json.dumps(REPORT).encode(), "text/plain")  # fmt: skip
        assert accepted.status_code == 202


class _PlainTextBodies(HTTPAdapter):
    """A proxy's mistake: every SP-API body leaves labelled ``text/plain`` (LWA's form is left alone)."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.body and not (request.path_url or "").startswith("/auth/"):
            request.headers["Content-Type"] = "text/plain"
        return super().send(request, *args, **kwargs)


def test_the_client_raises_a_clear_permanent_error_for_415(
    simulator: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    session = requests.Session()
    session.mount("http://", _PlainTextBodies())
    settings = simulator_settings(simulator, redis_url, tmp_path)
    client = SpapiClient.for_seller(settings, simulator.seller_id, redis=redis_client, session=session)
    with pytest.raises(InvalidRequest) as caught:
        client.create_report(REPORT["reportType"], ["ATVPDKIKX0DER"])
    assert caught.value.status == 415
    assert "Amazon accepts only JSON bodies" in str(caught.value)
    assert [r.status for r in simulator.requests("createReport")] == [415]  # refused once, never repeated


def test_the_client_raises_a_clear_permanent_error_for_413(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    # The client's own checks keep its bodies small, so the simulator's limit is lowered to refuse one.
    with start_simulator(quick_config(max_body_bytes=32)) as sim:
        client = SpapiClient.grantless(simulator_settings(sim, redis_url, tmp_path), redis=redis_client)
        with pytest.raises(InvalidRequest) as caught:
            client.create_destination("reports", ARN)
        assert caught.value.status == 413
        assert "larger than Amazon accepts" in str(caught.value)
        assert [r.status for r in sim.requests("createDestination")] == [413]
