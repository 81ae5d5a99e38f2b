"""The SP-API client: LWA tokens, Reports 2021-06-30 and Notifications v1, fleet-wide rate limits.

::

    from spreports.spapi import SpapiClient
    client = SpapiClient.for_seller(settings, "A1SELLER", redis=redis_client)
    report_id = client.create_report("GET_MERCHANT_LISTINGS_ALL_DATA", ["ATVPDKIKX0DER"])

This package imports no Celery: tasks wrap it, tests call it directly.
"""

from __future__ import annotations

from spreports.spapi.client import SpapiClient
from spreports.spapi.models import (
    Destination,
    Report,
    ReportDocument,
    ReportSchedule,
    ReportsPage,
    Subscription,
)
from spreports.spapi.operations import OPERATIONS, RESTRICTED_REPORT_TYPES, Operation
from spreports.spapi.ratelimit import RateLimiter
from spreports.spapi.transport import RetryPolicy, default_session

__all__ = [
    "OPERATIONS",
    "RESTRICTED_REPORT_TYPES",
    "Destination",
    "Operation",
    "RateLimiter",
    "Report",
    "ReportDocument",
    "ReportSchedule",
    "ReportsPage",
    "RetryPolicy",
    "SpapiClient",
    "Subscription",
    "default_session",
]
