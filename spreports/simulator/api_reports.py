"""Reports API 2021-06-30: the nine operations, as Amazon's model (models/reports_2021-06-30.json) describes them."""

from __future__ import annotations

import re
import secrets
import zlib
from datetime import datetime
from typing import Any
from urllib.parse import quote

from spreports.simulator.clock import iso, parse_iso
from spreports.simulator.http import ApiError, Call, Reply, UrlGrant, denied, invalid, not_found
from spreports.simulator.periods import PERIODS
from spreports.simulator.world import RETENTION_DAYS, Report

STATUSES = ("CANCELLED", "DONE", "FATAL", "IN_PROGRESS", "IN_QUEUE")
REPORT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{2,127}$")
GET_REPORTS_FILTERS = (
    "reportTypes",
    "processingStatuses",
    "marketplaceIds",
    "pageSize",
    "createdSince",
    "createdUntil",
)
# A createdSince computed as "90 days ago" just before the call is not refused for the call's own latency.
RETENTION_GRACE_SECONDS = 60.0


def _report_type(value: Any) -> str:
    if not isinstance(value, str) or not REPORT_TYPE.match(value):
        raise invalid("reportType;", "One or more required parameters missing or invalid")
    return value


def _marketplaces(value: Any, *, maximum: int = 25) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or len(value) > maximum
        or not all(isinstance(v, str) and v for v in value)
    ):
        raise invalid("marketplaceIds;", "One or more required parameters missing or invalid")
    return tuple(value)


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise invalid(f"{name};", "Invalid date-time")
    try:
        return parse_iso(value)
    except ValueError:
        raise invalid(f"{name};", "Invalid date-time") from None


def _options(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise invalid("reportOptions;", "reportOptions must map strings to strings")
    return dict(value)


def _report(call: Call, report_id: str) -> Report:
    report = call.core.world.reports.get((call.seller_id, report_id))
    if report is None or not call.core.world.retained(report):
        raise _unknown(call, f"Report {report_id}", "reportId")
    return report


def _unknown(call: Call, what: str, parameter: str) -> ApiError:
    """An id the seller does not have: Amazon answers 400 ``InvalidInput`` ("Invalid reportDocumentId ..."),
    not the model's 404 (``unknown_ids_invalid``; off, 404 ``NotFound``)."""
    if not call.core.config.unknown_ids_invalid:
        return not_found(what)
    return invalid(f"{parameter};", f"Invalid {parameter} {what.rsplit(' ', 1)[-1][:100]}")


def create_report(call: Call) -> Reply:
    """POST /reports/2021-06-30/reports -> 202 CreateReportResponse."""
    body = call.json_body()
    report_type = _report_type(body.get("reportType"))
    if report_type in call.core.config.unrequestable_report_types:
        raise invalid("reportType;", f"Report type {report_type} cannot be requested; Amazon creates it by itself")
    marketplaces = _marketplaces(body.get("marketplaceIds"))
    if len(marketplaces) > 1 and report_type in call.core.config.single_marketplace_report_types:
        raise invalid(
            "",
            "Report rejected for this client. Multiple marketplaces were provided for this report type, "
            "which accepts only one marketplace per request.",
        )
    options = _options(body.get("reportOptions"))
    now = call.core.clock.now()
    times: dict[str, str] = {}
    for name in ("dataStartTime", "dataEndTime"):
        if body.get(name) is not None:
            moment = _time(body[name], name)
            if moment > now:
                raise invalid(f"{name};", f"{name} must be prior to or equal to the current date and time")
            times[name] = iso(moment)
    if "dataStartTime" in times and "dataEndTime" in times and times["dataStartTime"] > times["dataEndTime"]:
        raise invalid("dataStartTime;dataEndTime;", "dataStartTime must be before dataEndTime")
    world = call.core.world
    if not world.app_allows(report_type) or not world.type_allows(call.seller_id, report_type):
        # The application's per-type limit (across all its sellers) or the seller's own limit of the type:
        # Amazon's usual 429, which does not say which one.
        raise ApiError(
            429, "QuotaExceeded", "You exceeded your quota for the requested resource.", "", "ThrottlingException"
        )
    report = call.core.world.create_report(
        call.seller_id,
        report_type,
        marketplaces,
        data_start=times.get("dataStartTime"),
        data_end=times.get("dataEndTime"),
        options=options,
    )
    return 202, {"reportId": report.report_id}


def get_reports(call: Call) -> Reply:
    """GET /reports/2021-06-30/reports -> 200 GetReportsResponse, paged with nextToken."""
    args = call.request.args
    world = call.core.world
    token = args.get("nextToken")
    if token is not None:
        if any(name in args for name in GET_REPORTS_FILTERS):
            raise invalid("nextToken;", "nextToken must be the only parameter when it is specified")
        with world.lock:
            saved = world.next_tokens.get(token)
            # A repeating token: the same page again, pointing at itself (a listing that never ends).
            repeat = saved is not None and call.core.faults.take("repeated_next_tokens")
            if not repeat:
                world.next_tokens.pop(token, None)
        if saved is None:
            raise invalid("nextToken;", "The nextToken is invalid or expired")
        filters, offset = saved
    else:
        filters, offset, repeat = _report_filters(call), 0, False
    with world.lock:
        matches = sorted(
            (
                r
                for r in world.reports.values()
                if r.seller_id == call.seller_id and world.retained(r) and _matches(r, filters)
            ),
            key=lambda r: (r.created, int(r.report_id)),
            reverse=True,
        )
        page = matches[offset : offset + filters["pageSize"]]
        result: dict[str, Any] = {"reports": [r.to_json(call.core.clock) for r in page]}
        if repeat:
            result["nextToken"] = token
        elif offset + filters["pageSize"] < len(matches):
            next_token = secrets.token_urlsafe(32)
            world.next_tokens[next_token] = (filters, offset + filters["pageSize"])
            result["nextToken"] = next_token
    return 200, result


def _report_filters(call: Call) -> dict[str, Any]:
    types = call.query_list("reportTypes")
    if types is None:
        raise invalid("reportTypes;", "One or more required parameters missing")
    if len(types) > 10:
        raise invalid("reportTypes;", "reportTypes accepts at most 10 values")
    statuses = call.query_list("processingStatuses")
    if statuses is not None and any(s not in STATUSES for s in statuses):
        raise invalid("processingStatuses;", "Invalid input in processing status")
    marketplaces = call.query_list("marketplaceIds")
    if marketplaces is not None and len(marketplaces) > 10:
        raise invalid("marketplaceIds;", "marketplaceIds accepts at most 10 values")
    try:
        page_size = int(call.request.args.get("pageSize", "10"))
    except ValueError:
        raise invalid("pageSize;", "pageSize must be an integer") from None
    if not 1 <= page_size <= 100:
        raise invalid("pageSize;", "pageSize must be between 1 and 100")
    clock, cutoff = call.core.clock, call.core.world.cutoff(RETENTION_DAYS)
    since = call.request.args.get("createdSince")
    until = call.request.args.get("createdUntil")
    if since and clock.seconds_of(_time(since, "createdSince")) < cutoff - RETENTION_GRACE_SECONDS:
        raise invalid("createdSince;", "createdSince must be within the last 90 days: reports are retained for 90 days")
    return {
        "reportTypes": types,
        "processingStatuses": statuses,
        "marketplaceIds": marketplaces,
        "pageSize": page_size,
        "createdSince": clock.seconds_of(_time(since, "createdSince")) if since else cutoff,
        "createdUntil": clock.seconds_of(_time(until, "createdUntil")) if until else clock.seconds(),
    }


def _matches(report: Report, filters: dict[str, Any]) -> bool:
    return (
        report.report_type in filters["reportTypes"]
        and (filters["processingStatuses"] is None or report.status in filters["processingStatuses"])
        and (filters["marketplaceIds"] is None or bool(set(report.marketplace_ids) & set(filters["marketplaceIds"])))
        and filters["createdSince"] <= report.created <= filters["createdUntil"]
    )


def get_report(call: Call, reportId: str) -> Reply:
    """GET /reports/2021-06-30/reports/{reportId} -> 200 Report."""
    return 200, _report(call, reportId).to_json(call.core.clock)


def cancel_report(call: Call, reportId: str) -> Reply:
    """DELETE /reports/2021-06-30/reports/{reportId}: only IN_QUEUE reports can be cancelled."""
    report = _report(call, reportId)
    if report.status != "IN_QUEUE":
        raise invalid(
            "reportId;", f"Only reports with processingStatus IN_QUEUE can be cancelled; this one is {report.status}"
        )
    call.core.world.finish(report, "CANCELLED")
    return 200, None


def get_report_schedules(call: Call) -> Reply:
    """GET /reports/2021-06-30/schedules -> 200 ReportScheduleList."""
    types = call.query_list("reportTypes")
    if not types:
        raise invalid("reportTypes;", "One or more required parameters missing")
    if len(types) > 10:
        raise invalid("reportTypes;", "reportTypes accepts at most 10 values")
    world = call.core.world
    with world.lock:
        schedules = [
            s.to_json(call.core.clock) for s in world.schedules.values()
            if s.seller_id == call.seller_id and s.report_type in types
        ]  # fmt: skip
    return 200, {"reportSchedules": schedules}


def create_report_schedule(call: Call) -> Reply:
    """POST /reports/2021-06-30/schedules -> 201; replaces a schedule of the same type and marketplaces."""
    body = call.json_body()
    report_type = _report_type(body.get("reportType"))
    if report_type in call.core.config.unschedulable_report_types:
        # Amazon names the type by an internal number of its own; a stable one stands in for it here.
        number = 10_000 + zlib.crc32(report_type.encode()) % 90_000
        raise invalid("", f"Creation of report schedule type {number} is not allowed at this time")
    marketplaces = _marketplaces(body.get("marketplaceIds"))
    period = body.get("period")
    if period not in PERIODS:
        raise invalid("period;", f"period must be one of {', '.join(PERIODS)}")
    options = _options(body.get("reportOptions"))
    next_at = None
    if body.get("nextReportCreationTime") is not None:
        next_at = call.core.clock.seconds_of(_time(body["nextReportCreationTime"], "nextReportCreationTime"))
    schedule = call.core.world.put_schedule(call.seller_id, report_type, marketplaces, period, next_at, options)
    return 201, {"reportScheduleId": schedule.schedule_id}


def get_report_schedule(call: Call, reportScheduleId: str) -> Reply:
    """GET /reports/2021-06-30/schedules/{reportScheduleId} -> 200 ReportSchedule."""
    schedule = call.core.world.schedules.get((call.seller_id, reportScheduleId))
    if schedule is None:
        raise not_found(f"Report schedule {reportScheduleId}")
    return 200, schedule.to_json(call.core.clock)


def cancel_report_schedule(call: Call, reportScheduleId: str) -> Reply:
    """DELETE /reports/2021-06-30/schedules/{reportScheduleId} -> 200, no body."""
    with call.core.world.lock:
        if call.core.world.schedules.pop((call.seller_id, reportScheduleId), None) is None:
            raise not_found(f"Report schedule {reportScheduleId}")
    return 200, None


def get_report_document(call: Call, reportDocumentId: str) -> Reply:
    """GET /reports/2021-06-30/documents/{reportDocumentId} -> 200 ReportDocument with a fresh pre-signed URL."""
    core = call.core
    document = core.world.documents.get(reportDocumentId)
    if document is None or document.seller_id != call.seller_id:
        raise _unknown(call, f"Report document {reportDocumentId}", "reportDocumentId")
    if document.spec.is_restricted and call.grant.restricted is None:
        raise denied("This report document is restricted: call it with a Restricted Data Token.")
    declared = document.spec.gzip
    served = declared
    mislabel = document.spec.mislabel
    if mislabel == "none" and declared and core.faults.take("gzip_declared_plain"):
        mislabel = "gzip_declared_plain"
    elif mislabel == "none" and not declared and core.faults.take("plain_declared_gzip"):
        mislabel = "plain_declared_gzip"
    if mislabel == "gzip_declared_plain":
        declared, served = True, False
    elif mislabel == "plain_declared_gzip":
        declared, served = False, True
    encoding_header = call.request.args.get("enableContentEncodingUrlHeader", "false").lower() == "true"
    lifetime = core.config.url_lifetime
    issued = core.clock.seconds() - (lifetime + 1 if core.faults.take("expired_urls") else 0)
    signature = secrets.token_hex(32)
    core.urls[signature] = UrlGrant(
        document.document_id, document.seller_id, issued + lifetime, served, encoding_header and declared and served
    )
    url = _presigned(call, document.document_id, issued, signature)
    if core.faults.take("bad_url_hosts"):
        # The same signed path and query on an S3 host no resolver takes (nothing listens there anyway).
        label = "" if core.faults.bad_url_hosts % 2 else "b" * 64  # of the remaining ones: alternately
        url = f"https://tortuga-prod-na.{label}.s3-external-1.amazonaws.com" + url.removeprefix(core.base_url)
    body: dict[str, Any] = {"reportDocumentId": document.document_id, "url": url}
    if document.spec.algorithm is not None:
        body["compressionAlgorithm"] = document.spec.algorithm
    elif declared:
        body["compressionAlgorithm"] = "GZIP"
    return 200, body


def _presigned(call: Call, document_id: str, issued: float, signature: str) -> str:
    core = call.core
    stamp = core.clock.at(issued).strftime("%Y%m%dT%H%M%SZ")
    expires = max(1, round(core.clock.real_seconds(core.config.url_lifetime)))
    return (
        f"{core.base_url}/sim-reports/{quote(document_id, safe='')}"
        f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIASIMULATOR%2F{stamp[:8]}%2Fus-east-1%2Fs3%2Faws4_request"
        f"&X-Amz-Date={stamp}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
    )


# operationId -> (method, werkzeug rule, handler)
ROUTES: dict[str, tuple[str, str, Any]] = {
    "getReports": ("GET", "/reports/2021-06-30/reports", get_reports),
    "createReport": ("POST", "/reports/2021-06-30/reports", create_report),
    "getReport": ("GET", "/reports/2021-06-30/reports/<reportId>", get_report),
    "cancelReport": ("DELETE", "/reports/2021-06-30/reports/<reportId>", cancel_report),
    "getReportSchedules": ("GET", "/reports/2021-06-30/schedules", get_report_schedules),
    "createReportSchedule": ("POST", "/reports/2021-06-30/schedules", create_report_schedule),
    "getReportSchedule": ("GET", "/reports/2021-06-30/schedules/<reportScheduleId>", get_report_schedule),
    "cancelReportSchedule": ("DELETE", "/reports/2021-06-30/schedules/<reportScheduleId>", cancel_report_schedule),
    "getReportDocument": ("GET", "/reports/2021-06-30/documents/<reportDocumentId>", get_report_document),
}
