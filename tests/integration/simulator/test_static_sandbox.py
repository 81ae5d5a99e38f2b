"""Static-sandbox mode answers exactly the models' x-amzn-api-sandbox static examples."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from spreports.simulator import Simulator, start_simulator
from spreports.simulator.sandbox import MODEL_FILES, load_model
from tests.sim import lwa_token, quick_config, validate_response


def _examples() -> Iterator[tuple[str, str, str, int, dict[str, Any], Any]]:
    for name in MODEL_FILES:
        model = load_model(name)
        for path, operations in model["paths"].items():
            for method, operation in operations.items():
                if not isinstance(operation, dict) or "operationId" not in operation:
                    continue
                for status, answer in operation["responses"].items():
                    for example in answer.get("x-amzn-api-sandbox", {}).get("static", []):
                        yield (
                            operation["operationId"],
                            method.upper(),
                            path,
                            int(status),
                            example["request"]["parameters"],
                            example.get("response"),
                        )


EXAMPLES = list(_examples())


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[Simulator, str, str]]:
    sim = start_simulator(quick_config(static_sandbox=True, rate_limits=True))
    yield sim, lwa_token(sim), lwa_token(sim, grantless=True)
    sim.stop()


def _request(operation: str, path: str, parameters: dict[str, Any]) -> tuple[str, dict[str, Any], Any]:
    from spreports.simulator.app import OPERATIONS

    query: dict[str, Any] = {}
    body = None
    for name, spec in parameters.items():
        value = spec["value"]
        if name == "body":
            body = value
        elif "{" + name + "}" in path:
            path = path.replace("{" + name + "}", value)
        else:
            query[name] = ",".join(value) if isinstance(value, list) else value
    for name in (
        "reportId",
        "reportScheduleId",
        "reportDocumentId",
        "notificationType",
        "subscriptionId",
        "destinationId",
    ):
        path = path.replace(
            "{" + name + "}", "REPORT_PROCESSING_FINISHED" if name == "notificationType" else "unmatched"
        )
    if operation in OPERATIONS and body is None and OPERATIONS[operation][0] == "POST":
        body = {}
    return path, query, body


@pytest.mark.parametrize(("operation", "method", "path", "status", "parameters", "expected"), EXAMPLES,
                         ids=[f"{e[0]}-{e[3]}-{i}" for i, e in enumerate(EXAMPLES)])  # fmt: skip
def test_each_static_example_is_answered_exactly(sandbox: tuple[Simulator, str, str], operation: str, method: str,
                                                 path: str, status: int, parameters: dict[str, Any], expected: Any) -> None:  # fmt: skip
    sim, token, grantless = sandbox
    from spreports.simulator.api_notifications import GRANTLESS

    url_path, query, body = _request(operation, path, parameters)
    if "{" in url_path:  # a path parameter the example leaves out cannot be sent at all
        pytest.skip("example without its path parameter")
    response = requests.request(
        method, sim.url + url_path, params=query, json=body, timeout=30,
        headers={"x-amz-access-token": grantless if operation in GRANTLESS else token},
    )  # fmt: skip
    validate_response(operation, response)
    assert response.status_code == status
    assert (response.json() if response.content else None) == expected


def test_unmatched_requests_get_a_400(sandbox: tuple[Simulator, str, str]) -> None:
    sim, token, _ = sandbox
    response = requests.get(
        f"{sim.url}/reports/2021-06-30/reports/someOtherId", headers={"x-amz-access-token": token}, timeout=30
    )
    validate_response("getReport", response)
    assert response.status_code == 400
    assert json.loads(response.content)["errors"][0]["code"] == "InvalidInput"
