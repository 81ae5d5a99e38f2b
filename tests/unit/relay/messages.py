"""Builders of SQS bodies for the relay's tests: valid notifications and each kind of bad message."""

from __future__ import annotations

import json
import uuid
from typing import Any

APPLICATION_ID = "amzn1.sellerapps.app.11111111-2222-3333-4444-555555555555"
OTHER_APPLICATION_ID = "amzn1.sellerapps.app.99999999-8888-7777-6666-555555555555"


def notification(
    *,
    status: str = "DONE",
    seller_id: str | None = "A3TH9S8BH6GOGM",
    account_id: str | None = None,
    report_type: str = "GET_MERCHANT_LISTINGS_ALL_DATA",
    report_id: str | None = None,
    document_id: str | None = "auto",
    notification_id: str | None = None,
    application_id: str = APPLICATION_ID,
    version: str = "2020-09-04",
) -> dict[str, Any]:
    """A REPORT_PROCESSING_FINISHED notification as Amazon sends it (fresh ids unless given)."""
    report_id = report_id or str(uuid.uuid4().int)[:11]
    report: dict[str, Any] = {
        "accountId": account_id or f"amzn1.merchant.o.{seller_id}",
        "reportId": report_id,
        "reportType": report_type,
        "processingStatus": status,
    }
    if seller_id is not None:
        report["sellerId"] = seller_id
    if document_id == "auto":
        document_id = f"amzn1.tortuga.4.na.{uuid.uuid4()}.T{report_id}"
    if document_id is not None:
        report["reportDocumentId"] = document_id
    return {
        "notificationVersion": version,
        "notificationType": "REPORT_PROCESSING_FINISHED",
        "payloadVersion": version,
        "eventTime": "2026-11-28T03:35:13.214Z",
        "payload": {"reportProcessingFinishedNotification": report},
        "notificationMetadata": {
            "applicationId": application_id,
            "subscriptionId": f"subscription-{uuid.uuid4()}",
            "publishTime": "2026-11-28T03:35:14.284Z",
            "notificationId": notification_id or str(uuid.uuid4()),
        },
    }


def body(data: dict[str, Any]) -> str:
    """The SQS body of a notification."""
    return json.dumps(data)


def other_type_body() -> str:
    """A notification of another type (generic PascalCase envelope)."""
    return json.dumps(
        {
            "NotificationVersion": "1.0",
            "NotificationType": "ANY_OFFER_CHANGED",
            "PayloadVersion": "1.0",
            "EventTime": "2026-11-28T03:35:13.214Z",
            "Payload": {"AnyOfferChangedNotification": {"SellerId": "A3TH9S8BH6GOGM"}},
            "NotificationMetadata": {"ApplicationId": APPLICATION_ID, "NotificationId": str(uuid.uuid4())},
        }
    )


# One of each kind of bad message the relay must dead-letter (or leave to the redrive policy).
BAD_BODIES: dict[str, str] = {
    "not-json": "this is {not json",
    "wrong-shape": json.dumps({"notificationType": "REPORT_PROCESSING_FINISHED", "payload": {}}),
    "other-type": other_type_body(),
    "other-application": body(notification(application_id=OTHER_APPLICATION_ID)),
}
