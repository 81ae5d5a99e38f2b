"""What every HTTP handler of the simulator shares: the core objects, the call context, errors, the request log."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from werkzeug.wrappers import Request

from spreports.simulator.clock import SimClock, iso
from spreports.simulator.config import Faults, SimulatorConfig
from spreports.simulator.notify import Notifier
from spreports.simulator.ratelimit import RateLimiter
from spreports.simulator.world import Grant, World

Reply = tuple[int, dict[str, Any] | None]
MAX_RECORDS = 200_000


class ApiError(Exception):
    """An SP-API error answer: status plus one ``Error`` object (``code``, ``message``, ``details``)."""

    def __init__(self, status: int, code: str, message: str, details: str = "", error_type: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details, self.error_type = status, code, message, details, error_type

    def body(self) -> dict[str, Any]:
        """The ``ErrorList`` body (the Notifications API's ``{errors: [...]}`` has the same shape)."""
        return {"errors": [{"code": self.code, "message": self.message, "details": self.details}]}


def invalid(details: str, message: str = "Invalid input") -> ApiError:
    """A 400 ``InvalidInput``."""
    return ApiError(400, "InvalidInput", message, details, "ValidationException")


def not_found(what: str) -> ApiError:
    """A 404 ``NotFound``."""
    return ApiError(404, "NotFound", f"{what} not found", "", "ResourceNotFoundException")


def denied(details: str = "") -> ApiError:
    """A 403 ``Unauthorized`` as Amazon sends it."""
    return ApiError(403, "Unauthorized", "Access to requested resource is denied.", details, "AccessDeniedException")


@dataclass
class UrlGrant:
    """One pre-signed document URL: what it serves and until when (simulated seconds)."""

    document_id: str
    seller_id: str
    expires_at: float
    serve_gzip: bool
    content_encoding_gzip: bool


@dataclass
class RequestRecord:
    """One request the simulator answered: who called what, and with which status."""

    seq: int
    time: str
    method: str
    path: str
    operation: str
    seller_id: str | None
    status: int
    request_id: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready data."""
        return asdict(self)


class RequestLog:
    """The latest requests answered (at most ``MAX_RECORDS``; never tokens, secrets or query strings)."""

    def __init__(self) -> None:
        # Bounded, so that a long benchmark run does not grow without end.
        self._records: deque[RequestRecord] = deque(maxlen=MAX_RECORDS)
        self._seq = 0
        self._lock = threading.Lock()

    def add(self, clock: SimClock, method: str, path: str, operation: str, seller_id: str | None,
            status: int, request_id: str) -> None:  # fmt: skip
        """Append one record."""
        with self._lock:
            self._seq += 1
            self._records.append(
                RequestRecord(self._seq, iso(clock.now()), method, path, operation, seller_id, status, request_id)
            )

    def records(self, operation: str | None = None, seller_id: str | None = None) -> list[RequestRecord]:
        """The records, optionally only of one operation and/or one seller."""
        with self._lock:
            return [
                r for r in self._records
                if (operation is None or r.operation == operation) and (seller_id is None or r.seller_id == seller_id)
            ]  # fmt: skip


@dataclass
class Core:
    """The simulator's parts, as the handlers see them."""

    config: SimulatorConfig
    clock: SimClock
    world: World
    faults: Faults
    limiter: RateLimiter
    notifier: Notifier
    log: RequestLog = field(default_factory=RequestLog)
    base_url: str = ""
    urls: dict[str, UrlGrant] = field(default_factory=dict)

    def sleep(self, seconds: float) -> None:
        """Sleep real time (the slow faults)."""
        time.sleep(seconds)


@dataclass
class Call:
    """One authenticated SP-API call."""

    core: Core
    request: Request
    operation: str
    grant: Grant

    @property
    def seller_id(self) -> str:
        """The calling seller (seller-authorised operations only)."""
        if self.grant.seller_id is None:
            raise denied("This operation needs a seller's access token.")
        return self.grant.seller_id

    def json_body(self) -> dict[str, Any]:
        """The JSON object body, or a 400."""
        try:
            body = json.loads(self.request.get_data(as_text=True) or "null")
        except ValueError:
            raise invalid("The request body is not valid JSON.") from None
        if not isinstance(body, dict):
            raise invalid("The request body must be a JSON object.")
        return body

    def query_list(self, name: str) -> list[str] | None:
        """A Swagger ``csv`` array query parameter (repeated parameters are accepted too)."""
        values = self.request.args.getlist(name)
        if not values:
            return None
        return [item for value in values for item in value.split(",") if item]
