"""Request bodies Amazon refuses: 413 for one too large, 415 for one that is not JSON.

Every SP-API model consumes ``application/json`` and declares 415 ("The request's Content-Type header
is invalid.") for every operation, so a request that carries a body (or names a Content-Type) of any
other media type is refused. Only the Notifications model declares 413 ("The request size exceeded
the maximum accepted size."); the Reports and Tokens models do not, so the simulator refuses an
oversized body with 413 only where Amazon's model says it can, and never invents a status a client
could not find in the models. Amazon documents no ``code`` for either error: the codes below name the
HTTP status, in the models' ``{"errors": [{code, message, details}]}`` shape.
"""

from __future__ import annotations

from functools import cache

from werkzeug.wrappers import Request

from spreports.simulator.config import SimulatorConfig
from spreports.simulator.http import ApiError
from spreports.simulator.sandbox import MODEL_FILES, load_model

JSON = "application/json"


@cache
def declaring(status: str) -> frozenset[str]:
    """The operationIds whose model declares response ``status``."""
    found = set()
    for name in MODEL_FILES:
        for operations in load_model(name)["paths"].values():
            for operation in operations.values():
                if isinstance(operation, dict) and status in operation.get("responses", {}):
                    found.add(str(operation["operationId"]))
    return frozenset(found)


def check_body(config: SimulatorConfig, request: Request, operation: str) -> None:
    """Raise the 413 or 415 Amazon answers for this request's body, when the config enforces it."""
    size = request.content_length or 0
    limit = config.max_body_bytes
    if limit and size > limit and operation in declaring("413"):
        raise ApiError(
            413,
            "RequestEntityTooLarge",
            "The request size exceeded the maximum accepted size.",
            f"The body has {size} bytes; at most {limit} are accepted.",
        )
    if not config.json_content_type or operation not in declaring("415"):
        return
    if (size or request.mimetype) and request.mimetype != JSON:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "The request's Content-Type header is invalid.",
            f"Content-Type {request.mimetype[:64] or '(none)'} is not supported; send {JSON}.",
        )
