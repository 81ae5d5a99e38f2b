"""The control endpoint ``/_sim/...``: faults, the request log, sent notifications and the clock.

- ``GET /_sim/requests[?operation=&seller=]`` -> ``{"requests": [RequestRecord...]}``
- ``GET /_sim/faults`` / ``POST /_sim/faults`` (JSON object of fault names -> values) -> the faults now
- ``POST /_sim/advance`` ``{"seconds": N}`` -> ``{"now": ISO time}``
- ``GET /_sim/notifications`` -> ``{"notifications": [{queueArn, queueUrl, body, messageId, error}...]}``
- ``POST /_sim/reports/<reportId>/finish`` ``{"status": "DONE", "sellerId": ...}`` -> the Report
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Request, Response

from spreports.simulator.clock import iso
from spreports.simulator.http import Core

ROUTES = {
    "_sim_requests": ("GET", "/_sim/requests"),
    "_sim_faults": ("GET", "/_sim/faults"),
    "_sim_set_faults": ("POST", "/_sim/faults"),
    "_sim_advance": ("POST", "/_sim/advance"),
    "_sim_notifications": ("GET", "/_sim/notifications"),
    "_sim_finish": ("POST", "/_sim/reports/<reportId>/finish"),
}


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, content_type="application/json")


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.get_data(as_text=True) or "{}")
    except ValueError:
        raise ValueError("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def handle(core: Core, endpoint: str, request: Request, args: dict[str, str]) -> Response:
    """Answer one control request; bad input gets a 400 ``{"error": ...}``."""
    try:
        return _handle(core, endpoint, request, args)
    except (ValueError, KeyError) as exc:
        return _json({"error": str(exc)}, 400)


def _handle(core: Core, endpoint: str, request: Request, args: dict[str, str]) -> Response:
    if endpoint == "_sim_requests":
        records = core.log.records(request.args.get("operation"), request.args.get("seller"))
        return _json({"requests": [r.as_dict() for r in records]})
    if endpoint == "_sim_faults":
        return _json(core.faults.as_dict())
    if endpoint == "_sim_set_faults":
        core.faults.update(_body(request))
        return _json(core.faults.as_dict())
    if endpoint == "_sim_advance":
        seconds = _body(request).get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise ValueError("seconds must be a non-negative number")
        core.clock.advance(float(seconds))
        core.world.tick()
        return _json({"now": iso(core.clock.now())})
    if endpoint == "_sim_notifications":
        sent = [
            {
                "queueArn": n.queue_arn,
                "queueUrl": n.queue_url,
                "body": n.body,
                "messageId": n.message_id,
                "error": n.error,
            }
            for n in list(core.notifier.sent)
        ]
        return _json({"notifications": sent})
    body = _body(request)
    seller_id = body.get("sellerId") or core.config.sellers[0].seller_id
    report = core.world.reports.get((seller_id, args["reportId"]))
    if report is None:
        return _json({"error": "no such report"}, 404)
    status = body.get("status", "DONE")
    if status not in ("DONE", "CANCELLED", "FATAL"):
        raise ValueError("status must be DONE, CANCELLED or FATAL")
    if report.status in ("DONE", "CANCELLED", "FATAL"):
        raise ValueError(f"the report has finished already ({report.status})")
    core.world.finish(report, status)
    return _json(report.to_json(core.clock))
