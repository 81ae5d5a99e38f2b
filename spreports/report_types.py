"""What Amazon allows per report type, in one place: the rules every part of the product reads.

The schedule sync asks whether a type can be scheduled, the backfill how long one request's data window
may be, the limiter which types have application-wide request limits, the request path how long a FATAL
report's cooldown lasts. Values are Amazon's documented ones ("Report Type Values" and the report-type
pages of the SP-API documentation); a type Amazon documents nothing for gets :data:`DEFAULT_RULES`.
Extend :data:`RULES` here when Amazon documents more; nothing else in the product hard-codes a type.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

__all__ = ["DEFAULT_RULES", "RESTRICTED_REPORT_TYPES", "RULES", "AppLimit", "ReportTypeRules", "rules_for"]

#: Report types whose documents hold personal data: getReportDocument needs a Restricted Data Token
#: for them (Tokens API use case guide, "restricted report types"). The one list of the product: the
#: client (``spreports.spapi.operations`` re-exports it) and the simulator both read it from here.
RESTRICTED_REPORT_TYPES: frozenset[str] = frozenset(
    {
        "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_INVOICING",
        "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_TAX",
        "GET_EASYSHIP_DOCUMENTS",
        "GET_FLAT_FILE_ACTIONABLE_ORDER_DATA_SHIPPING",
        "GET_FLAT_FILE_ORDER_REPORT_DATA_INVOICING",
        "GET_FLAT_FILE_ORDER_REPORT_DATA_SHIPPING",
        "GET_FLAT_FILE_ORDER_REPORT_DATA_TAX",
        "GET_FLAT_FILE_ORDERS_RECONCILIATION_DATA_INVOICING",
        "GET_FLAT_FILE_ORDERS_RECONCILIATION_DATA_SHIPPING",
        "GET_FLAT_FILE_ORDERS_RECONCILIATION_DATA_TAX",
        "GET_GST_MTR_B2B_CUSTOM",
        "GET_ORDER_REPORT_DATA_INVOICING",
        "GET_ORDER_REPORT_DATA_SHIPPING",
        "GET_ORDER_REPORT_DATA_TAX",
        "GET_VAT_TRANSACTION_DATA",
        "SC_VAT_TAX_REPORT",
    }
)


@dataclass(frozen=True, slots=True)
class AppLimit:
    """An application-wide request limit for a report type: ``requests`` per ``per``, across all sellers."""

    requests: int
    per: timedelta
    #: At most this many requests a day (None: only ``requests`` per ``per``).
    daily: int | None = None


@dataclass(frozen=True, slots=True)
class ReportTypeRules:
    """What Amazon allows for one report type."""

    #: Whether ``createReportSchedule`` accepts the type (many types are request-only).
    schedulable: bool = True
    #: The longest data window one report may cover (``dataEndTime - dataStartTime``).
    max_window: timedelta = timedelta(days=30)
    #: The application-wide request limit (None: only the operation's per-seller quota).
    app_limit: AppLimit | None = None
    #: After a FATAL report, requests of the same (seller, type, options) wait this long.
    fatal_cooldown: timedelta = timedelta(minutes=30)
    #: Whether the document holds personal data and needs a restricted data token.
    restricted: bool = False


#: A type Amazon documents nothing specific for.
DEFAULT_RULES = ReportTypeRules()

#: The types Amazon documents something specific for.
RULES: dict[str, ReportTypeRules] = {
    # Since 2026 the Sales and Traffic report may be requested once per 15 minutes per application,
    # at most 96 a day; it cannot be scheduled.
    "GET_SALES_AND_TRAFFIC_REPORT": ReportTypeRules(
        schedulable=False,
        max_window=timedelta(days=30),
        app_limit=AppLimit(requests=1, per=timedelta(minutes=15), daily=96),
    ),
}


def rules_for(report_type: str) -> ReportTypeRules:
    """The rules of ``report_type``: its own entry, else the defaults (restricted types marked so)."""
    rules = RULES.get(report_type, DEFAULT_RULES)
    if report_type in RESTRICTED_REPORT_TYPES and not rules.restricted:
        rules = ReportTypeRules(
            schedulable=rules.schedulable,
            max_window=rules.max_window,
            app_limit=rules.app_limit,
            fatal_cooldown=rules.fatal_cooldown,
            restricted=True,
        )
    return rules
