"""Every SP-API operation the client calls, with its method, path and documented usage plan.

This table is the one place that knows Amazon's default rates (requests per second) and bursts:
the limiter seeds each (seller, operation) bucket from it, the client builds requests from it.
Sources: each operation's description (its usage plan) in Amazon's official models of the Reports,
Notifications and Tokens APIs.
"""

from __future__ import annotations

from dataclasses import dataclass

# One list of restricted types for the whole product (and the simulator): re-exported here for the client.
from spreports.report_types import RESTRICTED_REPORT_TYPES

__all__ = ["HOSTS", "OPERATIONS", "RESTRICTED_REPORT_TYPES", "Operation", "base_url"]


@dataclass(frozen=True)
class Operation:
    """One SP-API operation and its default usage plan."""

    name: str
    method: str
    path: str
    rate: float
    burst: int
    grantless: bool = False
    #: False when repeating the request can create a second resource (a duplicate report, schedule,
    #: destination or subscription): the transport then retries only failures Amazon surely never saw.
    idempotent: bool = True

    def url_path(self, **params: str) -> str:
        """The path with its ``{placeholders}`` filled, each value percent-encoded."""
        from urllib.parse import quote

        return self.path.format(**{key: quote(value, safe="") for key, value in params.items()})


_REPORTS = "/reports/2021-06-30"
_NOTIFICATIONS = "/notifications/v1"

GET_REPORTS = Operation("getReports", "GET", f"{_REPORTS}/reports", 0.0222, 10)
CREATE_REPORT = Operation("createReport", "POST", f"{_REPORTS}/reports", 0.0167, 15, idempotent=False)
CANCEL_REPORT = Operation("cancelReport", "DELETE", f"{_REPORTS}/reports/{{reportId}}", 0.0222, 10)
GET_REPORT = Operation("getReport", "GET", f"{_REPORTS}/reports/{{reportId}}", 2.0, 15)
GET_REPORT_SCHEDULES = Operation("getReportSchedules", "GET", f"{_REPORTS}/schedules", 0.0222, 10)
CREATE_REPORT_SCHEDULE = Operation(
    "createReportSchedule", "POST", f"{_REPORTS}/schedules", 0.0222, 10, idempotent=False
)
CANCEL_REPORT_SCHEDULE = Operation(
    "cancelReportSchedule", "DELETE", f"{_REPORTS}/schedules/{{reportScheduleId}}", 0.0222, 10
)
GET_REPORT_SCHEDULE = Operation("getReportSchedule", "GET", f"{_REPORTS}/schedules/{{reportScheduleId}}", 0.0222, 10)
GET_REPORT_DOCUMENT = Operation("getReportDocument", "GET", f"{_REPORTS}/documents/{{reportDocumentId}}", 0.0167, 15)

GET_SUBSCRIPTION = Operation("getSubscription", "GET", f"{_NOTIFICATIONS}/subscriptions/{{notificationType}}", 1.0, 5)
CREATE_SUBSCRIPTION = Operation(
    "createSubscription", "POST", f"{_NOTIFICATIONS}/subscriptions/{{notificationType}}", 1.0, 5, idempotent=False
)
DELETE_SUBSCRIPTION_BY_ID = Operation(
    "deleteSubscriptionById",
    "DELETE",
    f"{_NOTIFICATIONS}/subscriptions/{{notificationType}}/{{subscriptionId}}",
    1.0,
    5,
    grantless=True,
)
GET_DESTINATIONS = Operation("getDestinations", "GET", f"{_NOTIFICATIONS}/destinations", 1.0, 5, grantless=True)
CREATE_DESTINATION = Operation(
    "createDestination", "POST", f"{_NOTIFICATIONS}/destinations", 1.0, 5, grantless=True, idempotent=False
)
DELETE_DESTINATION = Operation(
    "deleteDestination", "DELETE", f"{_NOTIFICATIONS}/destinations/{{destinationId}}", 1.0, 5, grantless=True
)

CREATE_RESTRICTED_DATA_TOKEN = Operation(
    "createRestrictedDataToken", "POST", "/tokens/2021-03-01/restrictedDataToken", 1.0, 10
)

#: Every operation by its operationId.
OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        GET_REPORTS, CREATE_REPORT, CANCEL_REPORT, GET_REPORT, GET_REPORT_SCHEDULES, CREATE_REPORT_SCHEDULE,
        CANCEL_REPORT_SCHEDULE, GET_REPORT_SCHEDULE, GET_REPORT_DOCUMENT, GET_SUBSCRIPTION, CREATE_SUBSCRIPTION,
        DELETE_SUBSCRIPTION_BY_ID, GET_DESTINATIONS, CREATE_DESTINATION, DELETE_DESTINATION,
        CREATE_RESTRICTED_DATA_TOKEN,
    )
}  # fmt: skip

#: Production and sandbox hosts per region.
HOSTS: dict[str, tuple[str, str]] = {
    "na": ("https://sellingpartnerapi-na.amazon.com", "https://sandbox.sellingpartnerapi-na.amazon.com"),
    "eu": ("https://sellingpartnerapi-eu.amazon.com", "https://sandbox.sellingpartnerapi-eu.amazon.com"),
    "fe": ("https://sellingpartnerapi-fe.amazon.com", "https://sandbox.sellingpartnerapi-fe.amazon.com"),
}


def base_url(region: str, *, sandbox: bool = False, endpoint: str | None = None) -> str:
    """The SP-API base URL: ``endpoint`` when configured, else the region's production or sandbox host."""
    if endpoint:
        return endpoint.rstrip("/")
    production, sandbox_host = HOSTS[region]
    return sandbox_host if sandbox else production
