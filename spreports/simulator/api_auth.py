"""Login with Amazon (``POST /auth/o2/token``) and the Tokens API's Restricted Data Tokens."""

from __future__ import annotations

import json
import math
import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from spreports.simulator.http import Call, Core, Reply, invalid

GRANTLESS_SCOPES = frozenset(
    {
        "sellingpartnerapi::notifications",
        "sellingpartnerapi::migration",
        "sellingpartnerapi::client_credential:rotation",
    }
)
RDT_METHODS = ("GET", "PUT", "POST", "DELETE")
REPORTS_PREFIX = "/reports/"
DOCUMENTS_PREFIX = "/reports/2021-06-30/documents/"


class LwaError(Exception):
    """An OAuth error answer: ``{"error": code, "error_description": text}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


def _fields(request: Request) -> dict[str, str]:
    # Amazon documents a form body; its Java SDK posts JSON: accept both.
    if request.mimetype == "application/json":
        try:
            data = json.loads(request.get_data(as_text=True) or "{}")
        except ValueError:
            raise LwaError(400, "invalid_request", "The request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise LwaError(400, "invalid_request", "The request body must be an object")
        return {k: str(v) for k, v in data.items() if v is not None}
    return {k: v for k, v in request.form.items()}


def lwa_token(core: Core, request: Request) -> tuple[int, dict[str, Any], str | None]:
    """Exchange a refresh token or client credentials for an access token: (status, body, seller_id)."""
    try:
        fields = _fields(request)
        grant_type = fields.get("grant_type")
        if not grant_type:
            raise LwaError(400, "invalid_request", "The request is missing a required parameter : grant_type")
        if grant_type not in ("refresh_token", "client_credentials"):
            raise LwaError(
                400, "unsupported_grant_type", f"The authorization grant type is not supported : {grant_type[:40]}"
            )
        for name in ("client_id", "client_secret"):
            if not fields.get(name):
                raise LwaError(400, "invalid_request", f"The request is missing a required parameter : {name}")
        config = core.config
        if not (secrets.compare_digest(fields["client_id"], config.client_id)
                and secrets.compare_digest(fields["client_secret"], config.client_secret)):  # fmt: skip
            raise LwaError(401, "invalid_client", "Client authentication failed")
        lifetime = config.token_lifetime
        expires_in = _expires_in(core)
        if grant_type == "refresh_token":
            refresh = fields.get("refresh_token")
            if not refresh:
                raise LwaError(400, "invalid_request", "The request is missing a required parameter : refresh_token")
            seller = config.seller_by_refresh_token(refresh)
            if seller is None:
                raise LwaError(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
            token = core.world.grant(seller.seller_id, lifetime)
            body = {"access_token": token, "refresh_token": refresh, "token_type": "bearer", "expires_in": expires_in}
            return 200, body, seller.seller_id
        scope = fields.get("scope", "")
        if scope not in GRANTLESS_SCOPES:
            raise LwaError(400, "invalid_scope", "The request has an invalid parameter : scope")
        token = core.world.grant(None, lifetime, scope=scope)
        return 200, {"access_token": token, "scope": scope, "token_type": "bearer", "expires_in": expires_in}, None
    except LwaError as exc:
        return exc.status, {"error_description": exc.description, "error": exc.error}, None


def lwa_response(status: int, body: dict[str, Any], request_id: str) -> Response:
    """The JSON answer of the token endpoint (never cached, as OAuth demands)."""
    return Response(
        json.dumps(body),
        status=status,
        content_type="application/json;charset=UTF-8",
        headers={"x-amzn-RequestId": request_id, "Cache-Control": "no-cache, no-store", "Pragma": "no-cache"},
    )


def create_restricted_data_token(call: Call) -> Reply:
    """POST /tokens/2021-03-01/restrictedDataToken -> {restrictedDataToken, expiresIn}."""
    body = call.json_body()
    resources = body.get("restrictedResources")
    if not isinstance(resources, list) or not resources or len(resources) > 50:
        raise _rdt_invalid("Resource not provided.")
    allowed: set[tuple[str, str]] = set()
    for resource in resources:
        if not isinstance(resource, dict) or resource.get("method") not in RDT_METHODS:
            raise _rdt_invalid("Resource not provided.")
        path = resource.get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            raise _rdt_invalid("Resource path is invalid.")
        _check_document_path(call, path)
        allowed.add((resource["method"], path))
    lifetime = call.core.config.token_lifetime
    token = call.core.world.grant(call.seller_id, lifetime, restricted=frozenset(allowed))
    return 200, {"restrictedDataToken": token, "expiresIn": _expires_in(call.core)}


def _expires_in(core: Core) -> float:
    """What a token answer says of its lifetime: whole real seconds, or the configured odd value."""
    odd = core.config.token_expires_in
    return odd if odd is not None else max(1, math.floor(core.clock.real_seconds(core.config.token_lifetime)))


def _check_document_path(call: Call, path: str) -> None:
    """Amazon grants a token for reports only on one restricted document's own path.

    A generic path (``/reports/2021-06-30/documents/{reportDocumentId}``), another reports path, an
    unknown document, or a document that is not restricted: all get the same 400 ``InvalidInput`` "Invalid
    or unsupported document ID found" (``strict_restricted_tokens``; off, any path is granted).
    """
    if not path.startswith(REPORTS_PREFIX) or not call.core.config.strict_restricted_tokens:
        return
    document_id = path.removeprefix(DOCUMENTS_PREFIX) if path.startswith(DOCUMENTS_PREFIX) else ""
    document = call.core.world.documents.get(document_id) if document_id and "/" not in document_id else None
    if document is None or document.seller_id != call.seller_id or not document.spec.is_restricted:
        raise invalid("", "Invalid or unsupported document ID found")


def _rdt_invalid(details: str) -> Exception:
    """The Tokens API's 400 (``InvalidRequest``)."""
    error = invalid(details, "Request is missing or has invalid parameters")
    error.code = "InvalidRequest"
    return error


def rdt_covers(restricted: frozenset[tuple[str, str]], method: str, path: str) -> bool:
    """Whether an RDT's resources include this call; ``{name}`` segments match any one segment."""
    parts = path.rstrip("/").split("/")
    for allowed_method, allowed_path in restricted:
        allowed_parts = allowed_path.rstrip("/").split("/")
        if (
            allowed_method == method
            and len(allowed_parts) == len(parts)
            and all(
                a == p or (a.startswith("{") and a.endswith("}")) for a, p in zip(allowed_parts, parts, strict=True)
            )
        ):
            return True
    return False


ROUTES = {"createRestrictedDataToken": ("POST", "/tokens/2021-03-01/restrictedDataToken", create_restricted_data_token)}
