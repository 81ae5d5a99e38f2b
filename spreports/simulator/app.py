"""The simulator's WSGI application: werkzeug routing, authentication, faults, rate limits, headers, log.

Every SP-API answer carries ``x-amzn-RequestId``; 2xx answers also carry ``x-amzn-RateLimit-Limit``
(never a 429). Errors are the models' ``{"errors": [{code, message, details}]}``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from spreports.simulator import api_auth, api_notifications, api_reports, bodies, control, downloads, sandbox
from spreports.simulator.http import ApiError, Call, Core, Reply, denied
from spreports.simulator.world import Grant

Handler = Callable[..., Reply]
OPERATIONS: dict[str, tuple[str, str, Handler]] = {**api_reports.ROUTES, **api_notifications.ROUTES, **api_auth.ROUTES}
NOTIFICATIONS_SCOPE = "sellingpartnerapi::notifications"


def _rules() -> list[Rule]:
    rules = [Rule("/auth/o2/token", endpoint="lwa", methods=["POST"]),
             Rule("/sim-reports/<path:key>", endpoint="download", methods=["GET"])]  # fmt: skip
    rules += [Rule(rule, endpoint=name, methods=[method]) for name, (method, rule) in control.ROUTES.items()]
    rules += [Rule(rule, endpoint=name, methods=[method]) for name, (method, rule, _) in OPERATIONS.items()]
    return rules


class SimulatorApp:
    """WSGI callable answering LWA, SP-API, pre-signed URLs and the control endpoint."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.url_map = Map(_rules(), strict_slashes=False, merge_slashes=False)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self.handle(request)
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Route one request."""
        request_id = str(uuid.uuid4())
        try:
            endpoint, matched = self.url_map.bind_to_environ(request.environ).match()
        except (NotFound, MethodNotAllowed) as exc:
            return self._finish(request, request_id, "unknown", None, *_route_error(exc))
        args = {str(k): str(v) for k, v in matched.items()}
        if endpoint == "lwa":
            status, body, seller = api_auth.lwa_token(self.core, request)
            self._record(request, "lwaToken", seller, status, request_id)
            return api_auth.lwa_response(status, body, request_id)
        if endpoint == "download":
            response, seller = downloads.download(self.core, request, args["key"])
            self._record(request, "downloadDocument", seller, response.status_code, request_id)
            return response
        if endpoint.startswith("_sim_"):
            return control.handle(self.core, endpoint, request, args)
        return self._operation(request, request_id, endpoint, args)

    def _operation(self, request: Request, request_id: str, operation: str, args: dict[str, str]) -> Response:
        core = self.core
        seller: str | None = None
        try:
            if core.faults.take("slow_responses"):
                core.sleep(core.faults.slow_seconds)
            grant = self._authenticate(request, operation)
            seller = grant.seller_id
            bodies.check_body(core.config, request, operation)
            self._inject(operation)
            if not core.limiter.allow(seller or "application", operation):
                raise ApiError(
                    429,
                    "QuotaExceeded",
                    "You exceeded your quota for the requested resource.",
                    "",
                    "ThrottlingException",
                )
            core.world.tick()
            if core.config.static_sandbox:
                status, body = sandbox.answer(operation, request, args)
            else:
                status, body = OPERATIONS[operation][2](Call(core, request, operation, grant), **args)
            return self._finish(request, request_id, operation, seller, status, body)
        except ApiError as exc:
            return self._finish(request, request_id, operation, seller, exc.status, exc.body(), exc.error_type)

    def _authenticate(self, request: Request, operation: str) -> Grant:
        token = request.headers.get("x-amz-access-token", "")
        if not token:
            raise denied("")
        with self.core.world.lock:
            grant = self.core.world.grants.get(token)
        if grant is None:
            raise denied("The access token you provided is revoked, malformed or invalid.")
        if self.core.clock.seconds() > grant.expires_at:
            raise denied("The access token you provided has expired.")
        if grant.restricted is not None:
            if not api_auth.rdt_covers(grant.restricted, request.method, request.path):
                raise denied("The Restricted Data Token does not cover this operation.")
        elif operation in api_notifications.GRANTLESS:
            if grant.scope != NOTIFICATIONS_SCOPE:
                raise denied("This grantless operation needs a token of scope sellingpartnerapi::notifications.")
        elif grant.seller_id is None:
            raise denied("This operation needs a seller's access token.")
        return grant

    def _inject(self, operation: str) -> None:
        faults = self.core.faults
        if faults.fault_operations and operation not in faults.fault_operations:
            return
        if faults.take("throttle"):
            raise ApiError(
                429, "QuotaExceeded", "You exceeded your quota for the requested resource.", "", "ThrottlingException"
            )
        if faults.take("server_errors"):
            status = faults.server_error_status
            if status == 500:
                raise ApiError(
                    500, "InternalFailure", "We encountered an internal error. Please try again.", "", "InternalFailure"
                )
            raise ApiError(
                503,
                "ServiceUnavailable",
                "Service is temporarily unavailable. Please try again later.",
                "",
                "ServiceUnavailable",
            )

    def _finish(self, request: Request, request_id: str, operation: str, seller: str | None, status: int,
                body: dict[str, Any] | None, error_type: str | None = None) -> Response:  # fmt: skip
        response = Response(b"" if body is None else json.dumps(body), status=status, content_type="application/json")
        response.headers["x-amzn-RequestId"] = request_id
        if 200 <= status < 300 and operation in OPERATIONS:
            odd = self.core.faults.take("odd_rate_headers")
            header = self.core.faults.odd_rate_header if odd else self.core.limiter.header(operation)
            response.headers["x-amzn-RateLimit-Limit"] = header
        if error_type:
            response.headers["x-amzn-ErrorType"] = error_type
        self._record(request, operation, seller, status, request_id)
        return response

    def _record(self, request: Request, operation: str, seller: str | None, status: int, request_id: str) -> None:
        self.core.log.add(self.core.clock, request.method, request.path, operation, seller, status, request_id)


def _route_error(exc: HTTPException) -> tuple[int, dict[str, Any]]:
    status = exc.code or 404
    code = "NotFound" if status == 404 else "MethodNotAllowed"
    return status, ApiError(
        status, code, "The requested resource does not exist." if status == 404 else "Method not allowed."
    ).body()
