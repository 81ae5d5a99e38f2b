"""Building SP-API requests from caller input and reading answers into models.

Bad caller input becomes :class:`InvalidRequest` naming the field (never the value) before anything
is sent; an answer off Amazon's model becomes :class:`UnexpectedResponse` naming the fields only,
since the values may hold a pre-signed URL or a token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import requests
from pydantic import BaseModel, ValidationError

from spreports.errors import InvalidRequest, UnexpectedResponse
from spreports.ids import MAX_ID_LENGTH, is_amazon_id
from spreports.spapi.operations import Operation

M = TypeVar("M", bound=BaseModel)


def unexpected_response(operation: Operation, response: requests.Response, exc: Exception) -> UnexpectedResponse:
    """The error for a 2xx answer that does not parse."""
    # Only field locations and error types: the values may hold a pre-signed URL or a token.
    if isinstance(exc, ValidationError):
        what = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors()[:5])
    else:
        what = "the body is not JSON"
    error = UnexpectedResponse(f"{operation.name}: the answer does not match Amazon's model ({what})")
    error.status = response.status_code
    error.request_id = response.headers.get("x-amzn-RequestId")
    return error


def build(model: type[M], **fields: Any) -> M:
    """A request model from caller input; bad input is an InvalidRequest naming the field, not the value."""
    try:
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        raise InvalidRequest(f"{model.__name__}: {where}: {first['msg']}") from None


def payload_of(value: M | None, operation: Operation) -> M:
    """The ``payload`` of a Notifications answer, which must be there."""
    if value is None:
        raise UnexpectedResponse(f"{operation.name}: the answer has no payload")
    return value


def path_id(value: str, name: str) -> str:
    """An id for a path segment, in the shape of Amazon's ids; anything else is refused before any call.

    Percent-encoding alone is not enough: ``..`` (or ``.``) stays itself and the HTTP library removes it
    as a dot segment, so the seller's token would go to another path (``/reports/2021-06-30/``).
    """
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{name} must be a non-empty string")
    if not is_amazon_id(value):
        raise InvalidRequest(
            f"{name} is not an Amazon id (1 to {MAX_ID_LENGTH} letters, digits, '.', '_' or '-', the first a "
            "letter or digit); refused before any call"
        )
    return value


def csv(values: Sequence[str] | None, name: str, limit: int | None) -> str | None:
    """An array query parameter as Amazon reads it: comma-joined, at most ``limit`` items."""
    if not values:
        return None
    if isinstance(values, str):
        values = [values]
    if limit is not None and len(values) > limit:
        raise InvalidRequest(f"{name}: at most {limit} values, got {len(values)}")
    return ",".join(values)


def query_of(**params: str | None) -> dict[str, str]:
    """The query parameters that are set."""
    return {key: value for key, value in params.items() if value is not None}
