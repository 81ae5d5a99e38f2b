"""What Amazon allows per report type, in one place: the rules every part of the product reads.

The schedule sync asks whether a type can be scheduled, the backfill how long one request's data window
may be, the limiter which types have application-wide request limits, the request path how long a FATAL
report's cooldown lasts. Values are Amazon's documented ones ("Report Type Values" and the report-type
pages of the SP-API documentation); a type Amazon documents nothing for gets :data:`DEFAULT_RULES`.
Extend :data:`RULES` here when Amazon documents more; nothing else in the product hard-codes a type.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

__all__ = [
    "AMAZON_MADE",
    "DEFAULT_RULES",
    "RESTRICTED_REPORT_TYPES",
    "RULES",
    "AppLimit",
    "ReportTypeRules",
    "rules_for",
]

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
    #: Whether ``createReport`` accepts the type (settlement reports are only made by Amazon itself).
    requestable: bool = True
    #: At most this many marketplaces in one ``createReport`` (None: the operation's own 25).
    max_marketplaces: int | None = None
    #: Amazon generates the report at most this often, and answers a request meanwhile with the last one
    #: (None: Amazon documents no such interval).
    generated_every: timedelta | None = None
    #: Where Amazon documents these rules (its page), so a reader can check them when Amazon changes them.
    source: str = ""


# Amazon's pages the rules below come from.
FBA_PAGE = "SP-API docs, Report Type Values, Fulfillment by Amazon (FBA) Reports (report-type-values-fba)"
ANALYTICS_PAGE = "SP-API docs, Report Type Values, Analytics Reports (report-type-values-analytics)"
SETTLEMENT_PAGE = "SP-API docs, Report Type Values, Settlement Reports (report-type-values-settlement)"

#: A type Amazon documents nothing specific for.
DEFAULT_RULES = ReportTypeRules()

#: Reports Amazon makes by itself: neither requested nor scheduled, only listed with getReports and
#: downloaded. "Settlement reports cannot be requested or scheduled. They are automatically scheduled
#: by Amazon." (SP-API docs, "Settlement Reports", report-type-values-settlement.)
AMAZON_MADE = ReportTypeRules(
    schedulable=False,
    requestable=False,
    source=SETTLEMENT_PAGE,
)

#: Amazon generates a near real-time FBA report at most once per 30 minutes and a daily one at most once
#: per four hours, and answers a request within that time with the last report (FBA_PAGE): a request
#: repeated after a FATAL one fails again until the next generation, so the cooldown lasts as long.
NEAR_REAL_TIME = timedelta(minutes=30)
DAILY = timedelta(hours=4)


def _fba(every: timedelta, *, schedulable: bool = True) -> ReportTypeRules:
    """An FBA type generated at most once per ``every``: a FATAL one cools down for as long."""
    return ReportTypeRules(schedulable=schedulable, generated_every=every, fatal_cooldown=every, source=FBA_PAGE)


#: The types Amazon documents something specific for. Where a type is absent, Amazon's report-type
#: pages document no window, schedule or request limit for it, and DEFAULT_RULES apply (a 30-day window
#: is our own cautious default, not Amazon's figure). Documented but not a rule here: order reports
#: only cover orders less than two years old (SP-API docs, "Order Reports", report-type-values-order).
RULES: dict[str, ReportTypeRules] = {
    # Since 2026 the Sales and Traffic report may be requested once per 15 minutes per application,
    # at most 96 a day; it cannot be scheduled; one request covers one marketplace.
    "GET_SALES_AND_TRAFFIC_REPORT": ReportTypeRules(
        schedulable=False,
        max_window=timedelta(days=30),
        app_limit=AppLimit(requests=1, per=timedelta(minutes=15), daily=96),
        max_marketplaces=1,
        source=ANALYTICS_PAGE,
    ),
    # FBA Amazon Fulfilled Shipments Report: "This report can only be requested." and "You can request up
    # to one month of data in a single report" (one month taken as 30 days, the shortest month-long window
    # that is always accepted). Near real-time.
    "GET_AMAZON_FULFILLED_SHIPMENTS_DATA_GENERAL": _fba(NEAR_REAL_TIME, schedulable=False),
    # FBA inventory reports Amazon updates in near real-time (the Manage Inventory ones included).
    "GET_FBA_MYI_UNSUPPRESSED_INVENTORY_DATA": _fba(NEAR_REAL_TIME),
    "GET_FBA_MYI_ALL_INVENTORY_DATA": _fba(NEAR_REAL_TIME),
    "GET_AFN_INVENTORY_DATA": _fba(NEAR_REAL_TIME),
    "GET_AFN_INVENTORY_DATA_BY_COUNTRY": _fba(NEAR_REAL_TIME),
    "GET_FBA_FULFILLMENT_CURRENT_INVENTORY_DATA": _fba(NEAR_REAL_TIME),
    "GET_RESERVED_INVENTORY_DATA": _fba(NEAR_REAL_TIME),
    # FBA reports Amazon generates daily.
    "GET_FBA_INVENTORY_PLANNING_DATA": _fba(DAILY),
    "GET_FBA_STORAGE_FEE_CHARGES_DATA": _fba(DAILY),
    "GET_FBA_ESTIMATED_FBA_FEES_TXT_DATA": _fba(DAILY),
    "GET_STRANDED_INVENTORY_UI_DATA": _fba(DAILY),
    "GET_RESTOCK_INVENTORY_RECOMMENDATIONS_REPORT": _fba(DAILY),
    "GET_FBA_REIMBURSEMENTS_DATA": _fba(DAILY),
    # The flat file, XML (both deprecated) and flat file V2 settlement reports.
    "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE": AMAZON_MADE,
    "GET_V2_SETTLEMENT_REPORT_DATA_XML": AMAZON_MADE,
    "GET_V2_SETTLEMENT_REPORT_DATA_FLAT_FILE_V2": AMAZON_MADE,
}


def rules_for(report_type: str) -> ReportTypeRules:
    """The rules of ``report_type``: its own entry, else the defaults (restricted types marked so)."""
    rules = RULES.get(report_type, DEFAULT_RULES)
    if report_type in RESTRICTED_REPORT_TYPES and not rules.restricted:
        rules = replace(rules, restricted=True)
    return rules
