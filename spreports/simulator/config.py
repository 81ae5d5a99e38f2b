"""What a simulator is told: its sellers and credentials, its clock, its odds and its faults.

:class:`SimulatorConfig` is a plain value object. :func:`config_from_settings` builds one from the
product's :class:`~spreports.settings.Settings` so that one environment configures both sides; anything
the settings leave unset (client id, secret, sellers) is generated and shown by ``spreports simulator``.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spreports.settings import Settings

DEFAULT_MARKETPLACE = "ATVPDKIKX0DER"  # amazon.com
#: Settlement reports "cannot be requested or scheduled. They are automatically scheduled by Amazon."
SETTLEMENT_REPORT_TYPES = frozenset(
    {
        "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE",
        "GET_V2_SETTLEMENT_REPORT_DATA_XML",
        "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2",
    }
)
_TAKE_LOCK = threading.Lock()


@dataclass(frozen=True)
class SellerAccount:
    """One selling partner the simulator knows: who it is and the refresh token that stands for it."""

    seller_id: str
    refresh_token: str
    marketplace_ids: tuple[str, ...] = (DEFAULT_MARKETPLACE,)


@dataclass(frozen=True)
class Outcomes:
    """How reports end, as relative odds (they need not sum to 1), and how long each phase lasts.

    Durations are simulated seconds: a report stays IN_QUEUE ``queue_seconds`` and IN_PROGRESS
    ``processing_seconds`` before it ends DONE, CANCELLED (no data) or FATAL.
    """

    done: float = 1.0
    cancelled: float = 0.0
    fatal: float = 0.0
    queue_seconds: float = 2.0
    processing_seconds: float = 5.0


@dataclass
class Faults:
    """Faults to inject. Every count means "the next N occurrences"; each use decrements it.

    - ``throttle``: the next N SP-API calls answer 429 ``QuotaExceeded`` (a 429 storm), whatever the bucket holds.
    - ``server_errors``: the next N SP-API calls answer ``server_error_status`` (500 or 503) with an ErrorList.
    - ``fault_operations``: limit ``throttle`` and ``server_errors`` to these operationIds (empty: every operation).
    - ``slow_responses`` / ``slow_seconds``: the next N requests (API calls and document downloads) take
      ``slow_seconds`` of real time longer; downloads dribble their body over that time.
    - ``dropped_connections``: the next N document downloads send the headers and part of the body, then
      close the connection.
    - ``expired_urls``: the next N URLs returned by getReportDocument have already expired (403 on GET).
    - ``truncated_gzip``: the next N downloads of GZIP documents serve a gzip stream cut before its end
      (the HTTP response itself is complete: its Content-Length matches the cut body).
    - ``bad_url_hosts``: the next N getReportDocument answers give a pre-signed URL on an S3 host name that
      DNS cannot carry: an empty label or a label of 64 characters, alternately (the last one a 64-character one).
    - ``gzip_declared_plain``: the next N getReportDocument answers say ``GZIP`` but the URL serves plain bytes.
    - ``plain_declared_gzip``: the next N answers omit ``compressionAlgorithm`` but the URL serves gzip bytes.
    - ``duplicate_notifications``: the next N notifications are delivered twice (same notificationId).
    - ``foreign_notifications``: the next N finished reports are followed by a notification of another
      application (a different ``applicationId``, an unknown report).
    - ``malformed_notifications``: the next N notifications are sent as an SQS body that is not a valid
      notification (alternately broken JSON and JSON missing required fields).
    - ``stuck_reports``: the next N reports created stay IN_PROGRESS forever (until ``finish_report``).
    - ``queued_reports``: the next N reports created stay IN_QUEUE forever (until cancelled or finished).
    - ``repeated_notifications``: the next N notifications are delivered ten times (same notificationId),
      as Amazon has been seen to.
    - ``late_notifications`` / ``late_seconds``: the next N notifications are delivered ``late_seconds``
      simulated seconds after the report finished (minutes, not the usual second).
    - ``legacy_notifications``: the next N notifications carry ``sellerId`` and no ``accountId`` (the
      shape of messages from before 2024-03-20).
    - ``odd_rate_headers`` / ``odd_rate_header``: the next N successful SP-API answers carry
      ``x-amzn-RateLimit-Limit: <odd_rate_header>`` instead of their plan's rate (the header is a
      best-effort string: ``1e-300``, ``nan``, ``abc``, an empty one).
    - ``repeated_next_tokens``: the next N getReports calls with a ``nextToken`` answer the same page
      again with the same ``nextToken`` (a listing that never ends).
    """

    throttle: int = 0
    server_errors: int = 0
    server_error_status: int = 503
    fault_operations: list[str] = field(default_factory=list)
    slow_responses: int = 0
    slow_seconds: float = 2.0
    dropped_connections: int = 0
    expired_urls: int = 0
    bad_url_hosts: int = 0
    truncated_gzip: int = 0
    gzip_declared_plain: int = 0
    plain_declared_gzip: int = 0
    duplicate_notifications: int = 0
    foreign_notifications: int = 0
    malformed_notifications: int = 0
    stuck_reports: int = 0
    queued_reports: int = 0
    repeated_notifications: int = 0
    late_notifications: int = 0
    late_seconds: float = 300.0
    legacy_notifications: int = 0
    odd_rate_headers: int = 0
    odd_rate_header: str = "1e-300"
    repeated_next_tokens: int = 0

    def take(self, name: str) -> bool:
        """Use one occurrence of the counted fault ``name``: True when it fires now."""
        with _TAKE_LOCK:  # two concurrent requests must not both take the last occurrence
            remaining = getattr(self, name)
            if not isinstance(remaining, int) or isinstance(remaining, bool):
                raise ValueError(f"{name} is not a counted fault")
            if remaining <= 0:
                return False
            setattr(self, name, remaining - 1)
            return True

    def update(self, changes: dict[str, Any]) -> None:
        """Apply changes by name; an unknown name or a wrong type raises ValueError."""
        known = {f.name: f for f in dataclasses.fields(self)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            if isinstance(current, list):
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{name} must be a list of operationIds")
            elif isinstance(current, int) and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a non-negative integer")
            elif isinstance(current, float) and (not isinstance(value, int | float) or value < 0):
                raise ValueError(f"{name} must be a non-negative number")
            elif isinstance(current, str) and not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            setattr(self, name, value)
        if self.server_error_status not in (500, 503):
            raise ValueError("server_error_status must be 500 or 503")

    def as_dict(self) -> dict[str, Any]:
        """The current settings as JSON-ready data."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything a simulator needs; every field has a usable default.

    - ``client_id`` / ``client_secret``: the LWA application credentials the token endpoint accepts.
    - ``sellers``: the selling partners (each with its refresh token); the first is the default one.
    - ``application_id``: the ``amzn1.sellerapps.app.…`` id put in notifications.
    - ``speed``: simulated seconds per real second (schedules, report phases, URL and token lifetimes,
      rate-limit refill all follow the simulated clock).
    - ``start``: the simulated clock's first instant (default: now); a start in the past gives reports
      created hours ago by the callers' real clocks (a report stuck since then, say).
    - ``token_lifetime`` / ``url_lifetime``: simulated seconds an LWA token / a pre-signed URL lives.
    - ``token_expires_in``: the ``expires_in`` (LWA) and ``expiresIn`` (Restricted Data Tokens) answered
      instead of the token's lifetime: an odd value a token endpoint might send (``0.001``, ``1e308``,
      ``math.inf``, sent as ``Infinity``); the token itself still lives ``token_lifetime``.
    - ``rate_limits``: enforce Amazon's documented (rate, burst) per (seller, operation).
    - ``outcomes``: how reports end and how long they take.
    - ``faults``: the initial faults (changeable later with ``set_faults`` or ``POST /_sim/faults``).
    - ``static_sandbox``: answer only the models' ``x-amzn-api-sandbox`` static examples.
    - ``document_bytes`` / ``document_gzip``: size bound and compression of the documents of reports
      the simulator finishes by itself (``add_document`` chooses its own).
    - ``seed``: seeds the outcome dice and the document content, for reproducible runs.
    - ``strict_restricted_tokens``: grant a Restricted Data Token for reports only on one restricted
      document's exact path (Amazon's rule); off, any path is granted.
    - ``unknown_ids_invalid``: unknown report, schedule and document ids answer 400 ``InvalidInput``
      ("Invalid reportDocumentId ...") as Amazon does; off, 404 ``NotFound``.
    - ``fatal_error_documents``: a FATAL report gets an error document (JSON with ``errorDetails``).
    - ``app_limits``: application-wide request limits per report type, across all sellers
      (type -> (requests, per simulated seconds)); a request beyond one answers 429 ``QuotaExceeded``.
    - ``type_limits``: createReport limits of one report type for each seller on its own (type -> (requests,
      per simulated seconds)): Amazon throttles some types on their own (a type generated at most so often,
      a type disabled for the account) with its usual 429 ``QuotaExceeded``, while the seller's other types
      are served as the seller's createReport usage plan allows.
    - ``max_body_bytes``: request bodies larger than this answer 413 (payload too large) on the operations
      whose model declares 413 (the Notifications API); 0 switches the check off.
    - ``json_content_type``: a body (or a Content-Type) other than ``application/json`` answers 415.
    - ``unschedulable_report_types``: report types createReportSchedule refuses with a 400 (Amazon's
      "Creation of report schedule type N is not allowed at this time"); they can only be requested.
    - ``unrequestable_report_types``: report types createReport refuses with a 400 ``InvalidInput``
      (settlement reports: Amazon makes them by itself; its exact wording is not documented).
    - ``single_marketplace_report_types``: report types createReport refuses with a 400 ``InvalidInput``
      ("Report rejected for this client. Multiple marketplaces ...") when given more than one marketplace.
    """

    client_id: str = "amzn1.application-oa2-client.simulator"
    client_secret: str = "simulator-client-secret"
    sellers: tuple[SellerAccount, ...] = (SellerAccount("A1SIMULATEDSELLER", "Atzr|simulator-refresh-token"),)
    application_id: str = "amzn1.sellerapps.app.00000000-0000-4000-8000-000000000000"
    speed: float = 1.0
    start: datetime | None = None
    token_lifetime: float = 3600.0
    url_lifetime: float = 300.0
    token_expires_in: float | None = None
    rate_limits: bool = True
    outcomes: Outcomes = Outcomes()
    faults: Faults = field(default_factory=Faults)
    static_sandbox: bool = False
    document_bytes: int = 64 * 1024
    document_gzip: bool = True
    seed: int | None = None
    strict_restricted_tokens: bool = True
    unknown_ids_invalid: bool = True
    fatal_error_documents: bool = True
    app_limits: dict[str, tuple[int, float]] = field(
        default_factory=lambda: {"GET_SALES_AND_TRAFFIC_REPORT": (1, 900.0)}
    )
    type_limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    max_body_bytes: int = 64 * 1024
    json_content_type: bool = True
    unschedulable_report_types: frozenset[str] = frozenset({"GET_SALES_AND_TRAFFIC_REPORT", *SETTLEMENT_REPORT_TYPES})
    unrequestable_report_types: frozenset[str] = SETTLEMENT_REPORT_TYPES
    single_marketplace_report_types: frozenset[str] = frozenset({"GET_SALES_AND_TRAFFIC_REPORT"})

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be positive")
        if not self.sellers:
            raise ValueError("at least one seller is needed")
        if self.token_lifetime <= 0 or self.url_lifetime <= 0:
            raise ValueError("token_lifetime and url_lifetime must be positive")
        if self.max_body_bytes < 0:
            raise ValueError("max_body_bytes must be 0 (no limit) or positive")

    def seller_by_refresh_token(self, refresh_token: str) -> SellerAccount | None:
        """The seller a refresh token stands for, if any."""
        for seller in self.sellers:
            if secrets.compare_digest(seller.refresh_token, refresh_token):
                return seller
        return None


def generated_credentials() -> tuple[str, str]:
    """A fresh (client_id, client_secret) pair in Amazon's shape."""
    return (f"amzn1.application-oa2-client.{uuid.uuid4().hex}", f"amzn1.oa2-cs.v1.{secrets.token_hex(32)}")


def generated_seller(index: int = 1) -> SellerAccount:
    """A seller with a random id and refresh token."""
    seller_id = "A" + secrets.token_hex(6).upper() + f"SIM{index}"
    return SellerAccount(seller_id, f"Atzr|IwEB{secrets.token_urlsafe(48)}")


def config_from_settings(settings: Settings, **overrides: Any) -> SimulatorConfig:
    """A config accepting the product's own credentials; what the settings leave unset is generated."""
    generated_id, generated_secret = generated_credentials()
    client_id = settings.lwa.client_id or generated_id
    secret = settings.lwa.client_secret.get_secret_value() if settings.lwa.client_secret else generated_secret
    sellers = tuple(
        SellerAccount(
            seller_id, seller.refresh_token.get_secret_value(), tuple(seller.marketplace_ids) or (DEFAULT_MARKETPLACE,)
        )
        for seller_id, seller in settings.sellers().items()
    ) or (generated_seller(),)
    application_id = settings.sqs.application_id or f"amzn1.sellerapps.app.{uuid.uuid4()}"
    values: dict[str, Any] = {
        "client_id": client_id,
        "client_secret": secret,
        "sellers": sellers,
        "application_id": application_id,
    }
    values.update(overrides)
    return SimulatorConfig(**values)
