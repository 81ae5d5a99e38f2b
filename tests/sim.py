"""Test helpers around the SP-API simulator: validators built from Amazon's models, a quick config, a stall.

The quick config and the stall are the benchmarks' lab's (``benchmarks/lab.py``), their one home.

The validators use ``jsonschema`` on Amazon's own model files (never our pydantic models), so a response
that passes is right by Amazon's definition, not by ours.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
import requests

from benchmarks.lab import Stall as Stall
from benchmarks.lab import quick_config as quick_config
from spreports.simulator.sandbox import load_model

MODELS = {
    "reports": "reports_2021-06-30.json",
    "notifications": "notifications.json",
    "tokens": "tokens_2021-03-01.json",
}


@cache
def _operations() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """operationId -> (its model, its operation object)."""
    table = {}
    for name in MODELS.values():
        model = load_model(name)
        for operations in model["paths"].values():
            for operation in operations.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    table[operation["operationId"]] = (model, operation)
    return table


def validate_response(operation_id: str, response: requests.Response) -> Any:
    """Check status, body and headers of an SP-API answer against the operation's model; returns the JSON body.

    The swagger 2.0 ``#/definitions/...`` refs are resolved by handing jsonschema a root document that
    carries the model's ``definitions`` (swagger 2.0 schemas are JSON Schema draft 4).
    """
    model, operation = _operations()[operation_id]
    declared = operation["responses"].get(str(response.status_code))
    assert declared is not None, f"{operation_id}: status {response.status_code} is not in the model"
    assert response.headers.get("x-amzn-RequestId"), "every answer carries x-amzn-RequestId"
    if 200 <= response.status_code < 300:
        assert response.headers.get("x-amzn-RateLimit-Limit"), "2xx answers carry x-amzn-RateLimit-Limit"
    else:
        assert "x-amzn-RateLimit-Limit" not in response.headers, "only 2xx answers carry the rate header"
    schema = declared.get("schema")
    if schema is None:
        assert response.content == b"", f"{operation_id} {response.status_code} has no body in the model"
        return None
    body = response.json()
    root = {**schema, "definitions": model["definitions"]}
    jsonschema.Draft4Validator(root, format_checker=jsonschema.FormatChecker()).validate(body)
    return body


@cache
def notification_schema() -> dict[str, Any]:
    """ReportProcessingFinishedNotification.json."""
    return load_model("ReportProcessingFinishedNotification.json")


def validate_notification(body: str | dict[str, Any]) -> dict[str, Any]:
    """Check one SQS body against the official REPORT_PROCESSING_FINISHED schema (draft 7)."""
    data = json.loads(body) if isinstance(body, str) else body
    jsonschema.Draft7Validator(notification_schema(), format_checker=jsonschema.FormatChecker()).validate(data)
    return data


def lwa_token(sim: Any, seller_id: str | None = None, *, grantless: bool = False) -> str:
    """An access token from the simulator's LWA endpoint, as a client gets it."""
    form = {"client_id": sim.client_id, "client_secret": sim.client_secret}
    if grantless:
        form.update(grant_type="client_credentials", scope="sellingpartnerapi::notifications")
    else:
        form.update(grant_type="refresh_token", refresh_token=sim.refresh_tokens[seller_id or sim.seller_id])
    response = requests.post(sim.token_url, data=form, timeout=30)
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def simulator_settings(sim: Any, redis_url: str, tmp_path: Any, storage_url: str | None = None, **extra: Any) -> Any:
    """The product's Settings pointed at ``sim``, the test Redis and storage under ``tmp_path``."""
    from spreports.settings import Settings

    values: dict[str, Any] = {
        "broker_url": redis_url,
        "data_dir": tmp_path / "data",
        "seller_id": sim.seller_id,
        "lwa": {"client_id": sim.client_id, "client_secret": sim.client_secret,
                "refresh_token": sim.refresh_tokens[sim.seller_id], "token_url": sim.token_url},
        "spapi": {"endpoint": sim.url, "read_timeout": 20},
        "storage": {"url": storage_url or str(tmp_path / "reports")},
        "documents": {"allowed_hosts": [sim.url], "claim_ttl_seconds": 600},
    }  # fmt: skip
    values.update(extra)
    return Settings(**values)
