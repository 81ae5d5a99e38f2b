"""The operation table agrees with Amazon's models: methods, paths and usage plans."""

from __future__ import annotations

import re

from spreports.spapi.operations import HOSTS, OPERATIONS, base_url
from tests.models import load

PLAN = re.compile(r"\|\s*([0-9.]+)\s*\|\s*([0-9]+)\s*\|")


def _model_operations() -> dict[str, tuple[str, str, float, int]]:
    found = {}
    for name in ("reports_2021-06-30.json", "notifications.json", "tokens_2021-03-01.json"):
        model = load(name)
        for route, methods in model["paths"].items():
            for method, op in methods.items():
                if isinstance(op, dict) and "operationId" in op:
                    match = PLAN.search(op.get("description", ""))
                    rate, burst = (float(match[1]), int(match[2])) if match else (-1.0, -1)
                    found[op["operationId"]] = (method.upper(), route, rate, burst)
    return found


def test_every_operation_matches_its_model() -> None:
    models = _model_operations()
    for name, op in OPERATIONS.items():
        method, route, rate, burst = models[name]
        assert (op.method, op.path) == (method, route), name
        if rate >= 0:
            assert (op.rate, op.burst) == (rate, burst), name


def test_hosts_and_override() -> None:
    assert base_url("eu") == "https://sellingpartnerapi-eu.amazon.com"
    assert base_url("fe", sandbox=True) == "https://sandbox.sellingpartnerapi-fe.amazon.com"
    assert base_url("na", endpoint="http://127.0.0.1:9/") == "http://127.0.0.1:9"
    assert set(HOSTS) == {"na", "eu", "fe"}


def test_grantless_operations_are_the_documented_ones() -> None:
    grantless = {name for name, op in OPERATIONS.items() if op.grantless}
    assert grantless == {"deleteSubscriptionById", "getDestinations", "createDestination", "deleteDestination"}
