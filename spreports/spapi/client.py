"""The SP-API client: Reports 2021-06-30 and Notifications v1 operations for one seller (or grantless).

Build one with :meth:`SpapiClient.for_seller` (seller-authorised operations) or
:meth:`SpapiClient.grantless` (notification destinations and deleting subscriptions). Every method
sends one operation through the :class:`~spreports.spapi.transport.Transport` (fleet-wide rate limit,
LWA token, retries) and returns pydantic models. Errors come from :mod:`spreports.errors`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import redis
import requests
from pydantic import BaseModel, ValidationError

from spreports.accounts import credentials_for
from spreports.errors import AuthenticationError, InvalidRequest, NotFound, QuotaWait, RateLimited, RedisUnavailable
from spreports.report_types import AppLimit, rules_for
from spreports.settings import Settings
from spreports.spapi import operations as ops
from spreports.spapi.app_limits import AppLimiter
from spreports.spapi.lwa import LwaClient, LwaCredentials
from spreports.spapi.models import (
    CreateDestinationRequest,
    CreateReportResponse,
    CreateReportScheduleResponse,
    CreateReportScheduleSpecification,
    CreateReportSpecification,
    CreateRestrictedDataTokenRequest,
    CreateRestrictedDataTokenResponse,
    CreateSubscriptionRequest,
    Destination,
    DestinationResource,
    DestinationResponse,
    DestinationsResponse,
    Period,
    Report,
    ReportDocument,
    ReportSchedule,
    ReportScheduleList,
    ReportsPage,
    RestrictedResource,
    SqsResource,
    Subscription,
    SubscriptionResponse,
    iso,
)
from spreports.spapi.ratelimit import RateLimiter
from spreports.spapi.sealing import TokenSealer, sealer_for
from spreports.spapi.tokens import FetchedToken, SharedTokenCache, TokenSource, fingerprint
from spreports.spapi.transport import CallContext, RetryPolicy, Transport, default_session
from spreports.spapi.type_throttle import TypeBackoff
from spreports.spapi.wire import build, csv, path_id, payload_of, query_of, unexpected_response

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)
#: "Reports are retained for a maximum of 90 days" (getReports' createdSince in the Reports model).
REPORT_RETENTION = timedelta(days=90)
RETENTION_SLACK = timedelta(minutes=1)
GRANTLESS = "grantless"


class SpapiClient:
    """SP-API operations for one seller in one region (or for the application, grantless)."""

    def __init__(
        self, transport: Transport, context: CallContext, auth: TokenSource, client: redis.Redis, sealer: TokenSealer
    ) -> None:
        self._transport = transport
        self._context = context
        self._auth = auth
        self._redis = client
        self._sealer = sealer
        self._restricted: dict[str, SharedTokenCache] = {}
        #: The application-wide limit of a report type (a seam: tests scale it to a simulator's clock).
        self.app_limit_of: Callable[[str], AppLimit | None] = lambda report_type: rules_for(report_type).app_limit
        #: The back-off of report types Amazon throttled (a seam: its first and longest waits can be tuned).
        self.type_backoff = TypeBackoff(client)

    def __repr__(self) -> str:
        return f"SpapiClient(seller={self._context.seller!r}, region={self._context.region!r})"

    @property
    def transport(self) -> Transport:
        """The transport (its ``sleep``, ``clock`` and ``retry`` are the seams tests and callers tune)."""
        return self._transport

    @property
    def seller_id(self) -> str:
        """The seller this client calls for (``grantless`` for the application)."""
        return self._context.seller

    # --- construction -------------------------------------------------------------------------------

    @classmethod
    def for_seller(
        cls,
        settings: Settings,
        seller_id: str,
        *,
        redis: redis.Redis,
        session: requests.Session | None = None,
        max_wait: float = 5.0,
        retry: RetryPolicy | None = None,
    ) -> SpapiClient:
        """A client for ``seller_id``'s refresh token in its region.

        The credentials are :func:`spreports.accounts.credentials_for`'s: the seller's own entry, or the
        only one configured. Rate limits and cached tokens follow the credentials (one selling partner).
        """
        seller_id, seller = credentials_for(settings, seller_id)
        credentials = _credentials(settings, f"seller {seller_id}")
        session = session or default_session()
        lwa = LwaClient(credentials, session, _timeout(settings))
        refresh_token = seller.refresh_token
        if not refresh_token.get_secret_value():
            raise AuthenticationError(f"seller {seller_id} has an empty refresh token")
        # The endpoint is part of the key: a token of one LWA (or simulator) is no good at another.
        secret = refresh_token.get_secret_value()
        key = f"lwa:{seller_id}:{fingerprint(credentials.token_url, credentials.client_id, secret)}"

        def fetch() -> FetchedToken:
            return lwa.refresh_token_grant(refresh_token, who=f"seller {seller_id}")

        region = settings.region_of(seller_id)
        sealer = _sealer(settings, credentials.client_secret.get_secret_value())
        auth = SharedTokenCache(redis, key, fetch, sealer=sealer)
        transport = _transport(settings, region, session, redis, max_wait, retry)
        return cls(transport, CallContext(seller_id, region), auth, redis, sealer)

    @classmethod
    def grantless(
        cls,
        settings: Settings,
        *,
        redis: redis.Redis,
        session: requests.Session | None = None,
        max_wait: float = 5.0,
        retry: RetryPolicy | None = None,
        region: str | None = None,
    ) -> SpapiClient:
        """A client for grantless operations (scope ``sellingpartnerapi::notifications``)."""
        credentials = _credentials(settings, "the application (grantless operations)")
        session = session or default_session()
        lwa = LwaClient(credentials, session, _timeout(settings))
        secret = credentials.client_secret.get_secret_value()
        key = f"lwa-grantless:{fingerprint(credentials.token_url, credentials.client_id, secret)}"
        sealer = _sealer(settings, secret)
        auth = SharedTokenCache(redis, key, lwa.client_credentials_grant, sealer=sealer)
        region = region or settings.spapi.region
        transport = _transport(settings, region, session, redis, max_wait, retry)
        return cls(transport, CallContext(GRANTLESS, region), auth, redis, sealer)

    # --- Reports 2021-06-30 -------------------------------------------------------------------------

    def get_reports(
        self,
        report_types: Sequence[str] | None = None,
        processing_statuses: Sequence[str] | None = None,
        marketplace_ids: Sequence[str] | None = None,
        created_since: datetime | None = None,
        created_until: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[Report]:
        """Every report matching the filters, page after page (``nextToken`` is sent alone, as required).

        Pages cost getReports quota (burst 10, then one per 45 s): a long listing may raise
        :class:`~spreports.errors.RateLimited` part way; :meth:`get_reports_page` can resume from a token.
        A ``nextToken`` Amazon already gave in this listing leads back to pages already seen: the listing
        ends there, with a warning, instead of going round for ever.
        """
        page = self.get_reports_page(
            report_types, processing_statuses, marketplace_ids, created_since, created_until, page_size
        )
        given: set[str] = set()
        while True:
            yield from page.reports
            if not page.next_token:
                return
            if page.next_token in given:
                log.warning(
                    "getReports for seller %s gave a nextToken it had given before (after %d pages): "
                    "the listing ends here",
                    self.seller_id, len(given) + 1,
                )  # fmt: skip
                return
            given.add(page.next_token)
            page = self.get_reports_page(next_token=page.next_token)

    def get_reports_page(
        self,
        report_types: Sequence[str] | None = None,
        processing_statuses: Sequence[str] | None = None,
        marketplace_ids: Sequence[str] | None = None,
        created_since: datetime | None = None,
        created_until: datetime | None = None,
        page_size: int | None = None,
        *,
        next_token: str | None = None,
    ) -> ReportsPage:
        """One page of getReports: the first (filters) or a following one (``next_token`` alone)."""
        if next_token:
            return self._call(ops.GET_REPORTS, ReportsPage, query={"nextToken": next_token})
        if not report_types:
            raise InvalidRequest("getReports needs at least one report type (or a next_token)")
        if page_size is not None and not 1 <= page_size <= 100:
            raise InvalidRequest("getReports page_size must be between 1 and 100")
        if created_since is not None:
            _refuse_beyond_retention(created_since, datetime.now(UTC))
        query = query_of(
            reportTypes=csv(report_types, "reportTypes", 10),
            processingStatuses=csv(processing_statuses, "processingStatuses", None),
            marketplaceIds=csv(marketplace_ids, "marketplaceIds", 10),
            createdSince=iso(created_since) if created_since else None,
            createdUntil=iso(created_until) if created_until else None,
            pageSize=str(page_size) if page_size else None,
        )
        return self._call(ops.GET_REPORTS, ReportsPage, query=query)

    def get_report(self, report_id: str) -> Report:
        """One report by id."""
        return self._call(ops.GET_REPORT, Report, path_params={"reportId": path_id(report_id, "report_id")})

    def create_report(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        *,
        report_options: dict[str, str] | None = None,
        data_start_time: datetime | None = None,
        data_end_time: datetime | None = None,
    ) -> str:
        """Request a report; returns its ``reportId``.

        A type with an application-wide limit (:mod:`spreports.report_types`) first takes this seller's
        turn of it (:class:`~spreports.spapi.app_limits.AppLimiter`): :class:`~spreports.errors.QuotaWait`
        when the turn has not come, with nothing sent. A 429 backs off this report type only
        (:class:`~spreports.spapi.type_throttle.TypeBackoff`), never the seller's other types: its
        requests raise :class:`~spreports.spapi.type_throttle.TypeThrottled` (a wait) until it ends.
        """
        spec = build(
            CreateReportSpecification,
            report_type=report_type,
            marketplace_ids=list(marketplace_ids),
            report_options=report_options,
            data_start_time=data_start_time,
            data_end_time=data_end_time,
        )
        limit = self.app_limit_of(report_type)
        backoff = self.type_backoff
        scope = backoff.scope(self._context.region, self._context.seller, report_type, app_wide=limit is not None)
        backoff.check(scope, report_type)
        if limit is not None:
            AppLimiter(self._redis).acquire(report_type, self._context.seller, limit, region=self._context.region)
        try:
            answer = self._call(ops.CREATE_REPORT, CreateReportResponse, body=spec.to_wire(), own_throttle=True)
        except QuotaWait:
            raise  # the seller's shared bucket is in use: nothing was sent, nothing to charge to the type
        except RateLimited as exc:
            raise backoff.throttled(scope, report_type, request_id=exc.request_id) from None
        # The report exists now: a Redis blip forgetting the type's 429s must not fail (and so repeat) the request.
        with contextlib.suppress(RedisUnavailable):
            backoff.cleared(scope)
        return answer.report_id

    def cancel_report(self, report_id: str) -> None:
        """Cancel a report still IN_QUEUE."""
        self._send(ops.CANCEL_REPORT, path_params={"reportId": path_id(report_id, "report_id")})

    def get_report_schedules(self, report_types: Sequence[str]) -> list[ReportSchedule]:
        """The seller's schedules for these report types (1 to 10)."""
        if not report_types:
            raise InvalidRequest("getReportSchedules needs at least one report type")
        query = {"reportTypes": csv(report_types, "reportTypes", 10) or ""}
        return self._call(ops.GET_REPORT_SCHEDULES, ReportScheduleList, query=query).report_schedules

    def create_report_schedule(
        self,
        report_type: str,
        marketplace_ids: Sequence[str],
        period: Period | str,
        *,
        report_options: dict[str, str] | None = None,
        next_report_creation_time: datetime | None = None,
    ) -> str:
        """Create (or, for the same type and marketplaces, replace) a schedule; returns its id."""
        spec = build(
            CreateReportScheduleSpecification,
            report_type=report_type,
            marketplace_ids=list(marketplace_ids),
            period=period,
            report_options=report_options,
            next_report_creation_time=next_report_creation_time,
        )
        return self._call(
            ops.CREATE_REPORT_SCHEDULE, CreateReportScheduleResponse, body=spec.to_wire()
        ).report_schedule_id

    def get_report_schedule(self, report_schedule_id: str) -> ReportSchedule:
        """One schedule by id."""
        params = {"reportScheduleId": path_id(report_schedule_id, "report_schedule_id")}
        return self._call(ops.GET_REPORT_SCHEDULE, ReportSchedule, path_params=params)

    def cancel_report_schedule(self, report_schedule_id: str) -> None:
        """Cancel a schedule."""
        params = {"reportScheduleId": path_id(report_schedule_id, "report_schedule_id")}
        self._send(ops.CANCEL_REPORT_SCHEDULE, path_params=params)

    def get_report_document(
        self,
        report_document_id: str,
        report_type: str | None = None,
        *,
        enable_content_encoding_url_header: bool = False,
    ) -> ReportDocument:
        """Where to download a document (a fresh 5-minute URL); restricted types use a Restricted Data Token.

        A document of unknown type (``report_type`` None) is asked for with the seller's token first; a 403
        means it is restricted, and it is asked for once more with a token for its own path (Amazon grants
        none for a generic path, nor for a document that is not restricted).
        """
        params = {"reportDocumentId": path_id(report_document_id, "report_document_id")}
        query = {"enableContentEncodingUrlHeader": "true"} if enable_content_encoding_url_header else None
        path = ops.GET_REPORT_DOCUMENT.url_path(**params)
        if report_type in ops.RESTRICTED_REPORT_TYPES:
            auth: TokenSource = self._restricted_token(path)
            return self._call(ops.GET_REPORT_DOCUMENT, ReportDocument, path_params=params, query=query, auth=auth)
        try:
            return self._call(ops.GET_REPORT_DOCUMENT, ReportDocument, path_params=params, query=query)
        except InvalidRequest as exc:
            if report_type is not None or exc.status != 403:
                raise
        log.info("document %s of seller %s answered 403: asking again with a restricted data token",
                 report_document_id, self._context.seller)  # fmt: skip
        auth = self._restricted_token(path)
        return self._call(ops.GET_REPORT_DOCUMENT, ReportDocument, path_params=params, query=query, auth=auth)

    # --- Notifications v1 ---------------------------------------------------------------------------

    def get_subscription(self, notification_type: str, payload_version: str | None = None) -> Subscription | None:
        """The seller's subscription to ``notification_type``, or None when there is none."""
        params = {"notificationType": path_id(notification_type, "notification_type")}
        query = {"payloadVersion": payload_version} if payload_version else None
        try:
            answer = self._call(ops.GET_SUBSCRIPTION, SubscriptionResponse, path_params=params, query=query)
        except NotFound:
            return None
        return answer.payload

    def create_subscription(
        self, notification_type: str, destination_id: str, payload_version: str = "1.0"
    ) -> Subscription:
        """Subscribe the seller to ``notification_type`` on a destination (409 Conflict if it exists)."""
        params = {"notificationType": path_id(notification_type, "notification_type")}
        body = build(CreateSubscriptionRequest, payload_version=payload_version, destination_id=destination_id)
        answer = self._call(ops.CREATE_SUBSCRIPTION, SubscriptionResponse, path_params=params, body=body.to_wire())
        return payload_of(answer.payload, ops.CREATE_SUBSCRIPTION)

    def delete_subscription_by_id(self, notification_type: str, subscription_id: str) -> None:
        """Delete a subscription (grantless)."""
        params = {
            "notificationType": path_id(notification_type, "notification_type"),
            "subscriptionId": path_id(subscription_id, "subscription_id"),
        }
        self._send(ops.DELETE_SUBSCRIPTION_BY_ID, path_params=params)

    def get_destinations(self) -> list[Destination]:
        """The application's destinations in this region (grantless)."""
        return self._call(ops.GET_DESTINATIONS, DestinationsResponse).payload

    def create_destination(self, name: str, sqs_arn: str) -> Destination:
        """Register an SQS queue as a destination (grantless)."""
        resource = build(DestinationResource, sqs=build(SqsResource, arn=sqs_arn))
        body = build(CreateDestinationRequest, name=name, resource_specification=resource)
        answer = self._call(ops.CREATE_DESTINATION, DestinationResponse, body=body.to_wire())
        return payload_of(answer.payload, ops.CREATE_DESTINATION)

    def delete_destination(self, destination_id: str) -> None:
        """Delete a destination (grantless)."""
        self._send(ops.DELETE_DESTINATION, path_params={"destinationId": path_id(destination_id, "destination_id")})

    # --- plumbing -----------------------------------------------------------------------------------

    def _restricted_token(self, path: str) -> SharedTokenCache:
        cache = self._restricted.get(path)
        if cache is None:
            body = CreateRestrictedDataTokenRequest(restricted_resources=[RestrictedResource(method="GET", path=path)])

            def fetch() -> FetchedToken:
                answer = self._call(
                    ops.CREATE_RESTRICTED_DATA_TOKEN, CreateRestrictedDataTokenResponse, body=body.to_wire()
                )
                return FetchedToken(answer.restricted_data_token.get_secret_value(), float(answer.expires_in))

            where = fingerprint(self._transport.base_url)
            key = f"rdt:{self._context.region}:{self._context.seller}:{where}:{path}"
            cache = self._restricted[path] = SharedTokenCache(self._redis, key, fetch, sealer=self._sealer)
        return cache

    def _send(self, operation: ops.Operation, *, auth: TokenSource | None = None, **kwargs: Any) -> requests.Response:
        return self._transport.call(operation, self._context, auth or self._auth, **kwargs)

    def _call(self, operation: ops.Operation, model: type[M], **kwargs: Any) -> M:
        response = self._send(operation, **kwargs)
        try:
            return model.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise unexpected_response(operation, response, exc) from None


def _refuse_beyond_retention(created_since: datetime, now: datetime) -> None:
    """Refuse a ``createdSince`` before Amazon's retention: it keeps reports for 90 days and lists none older."""
    iso(created_since)  # a naive datetime is refused first, in its own words
    oldest = now - REPORT_RETENTION
    # "90 days ago" computed by the caller a moment before is not refused.
    if created_since < oldest - RETENTION_SLACK:
        raise InvalidRequest(
            f"getReports created_since {iso(created_since)} is more than {REPORT_RETENTION.days} days ago: Amazon "
            f"keeps reports for {REPORT_RETENTION.days} days and refuses an older createdSince; use {iso(oldest)} or later"
        )


def _credentials(settings: Settings, who: str) -> LwaCredentials:
    lwa = settings.lwa
    if not lwa.client_id or lwa.client_secret is None or not lwa.client_secret.get_secret_value():
        raise AuthenticationError(
            f"no LWA client credentials for {who}: set SPREPORTS_LWA__CLIENT_ID and SPREPORTS_LWA__CLIENT_SECRET"
        )
    return LwaCredentials(client_id=lwa.client_id, client_secret=lwa.client_secret, token_url=lwa.token_url)


def _timeout(settings: Settings) -> tuple[float, float]:
    return (settings.spapi.connect_timeout, settings.spapi.read_timeout)


def _sealer(settings: Settings, client_secret: str) -> TokenSealer:
    return sealer_for([key.get_secret_value() for key in settings.token_keys], client_secret)


def _transport(
    settings: Settings,
    region: str,
    session: requests.Session,
    client: redis.Redis,
    max_wait: float,
    retry: RetryPolicy | None,
) -> Transport:
    base = ops.base_url(region, sandbox=settings.spapi.sandbox, endpoint=settings.spapi.endpoint)
    return Transport(
        base, session, RateLimiter(client), _timeout(settings), max_wait=max_wait, retry=retry or RetryPolicy()
    )
