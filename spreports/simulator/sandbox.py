"""Static sandbox: answer exactly the ``x-amzn-api-sandbox`` static examples of Amazon's models.

Like Amazon's static sandbox, a request matches an example when every parameter the example lists has
the example's value; an example listing no parameters matches any request. The most specific example
wins. A request matching none gets a 400.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from werkzeug.wrappers import Request

from spreports.simulator.http import Reply, invalid

MODEL_FILES = ("reports_2021-06-30.json", "notifications.json", "tokens_2021-03-01.json")


def load_model(name: str) -> dict[str, Any]:
    """One of Amazon's model files shipped with the simulator (unmodified copies)."""
    text = resources.files("spreports.simulator").joinpath("models", name).read_text(encoding="utf-8")
    model: dict[str, Any] = json.loads(text)
    return model


@cache
def _examples() -> dict[str, list[tuple[int, dict[str, Any], dict[str, Any] | None, dict[str, str]]]]:
    """operationId -> [(status, parameters, response, parameter types)], most specific first."""
    table: dict[str, list[tuple[int, dict[str, Any], dict[str, Any] | None, dict[str, str]]]] = {}
    for name in MODEL_FILES:
        for operations in load_model(name)["paths"].values():
            for operation in operations.values():
                if not isinstance(operation, dict) or "operationId" not in operation:
                    continue
                types = {p["name"]: p.get("type", "object") for p in operation.get("parameters", [])}
                rows = table.setdefault(operation["operationId"], [])
                for status, answer in operation["responses"].items():
                    for example in answer.get("x-amzn-api-sandbox", {}).get("static", []):
                        rows.append((int(status), example["request"]["parameters"], example.get("response"), types))
                rows.sort(key=lambda row: -len(row[1]))
    return table


def _actual(name: str, kind: str, request: Request, path_args: dict[str, str]) -> Any:
    if name in path_args:
        return path_args[name]
    if name == "body":
        try:
            return json.loads(request.get_data(as_text=True) or "null")
        except ValueError:
            return None
    values = request.args.getlist(name)
    if not values:
        return None
    if kind == "array":
        return [item for value in values for item in value.split(",")]
    if kind == "boolean":
        return values[0].lower() == "true"
    if kind == "integer":
        try:
            return int(values[0])
        except ValueError:
            return values[0]
    return values[0]


def answer(operation: str, request: Request, path_args: dict[str, str]) -> Reply:
    """The static example answering this request, or a 400 when none matches."""
    for status, parameters, response, types in _examples().get(operation, []):
        if all(
            _actual(name, types.get(name, "string"), request, path_args) == spec.get("value")
            for name, spec in parameters.items()
        ):
            return status, response
    raise invalid("Could not match input arguments with a static sandbox response", "InvalidInput")
