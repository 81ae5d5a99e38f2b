"""REPORT_PROCESSING_FINISHED notifications: Amazon's schema as a model, and parsing of SQS bodies.

The model follows ``ReportProcessingFinishedNotification.json`` (camelCase envelope, payload key
``reportProcessingFinishedNotification``) and is tolerant where real messages vary:

- unknown fields are ignored (the schema has no ``additionalProperties: false``);
- version strings are never checked (``"2020-09-04"``, ``"1.0"`` and ``"2021-06-30"`` all occur);
- PascalCase keys (the generic notification envelope of other types) are accepted as well;
- ``sellerId`` may be absent or ``null`` (vendor groups) and ``accountId`` may be absent (messages from
  before 2024-03-20 have none): one of the two is needed, a message with neither is refused;
- fields the relay does not use (versions, times, subscription id) are optional, so that a harmless
  omission never dead-letters a real notification;
- an SNS envelope (``{"Type": "Notification", "Message": "<json>"}``, an SNS topic without raw
  delivery between Amazon and the queue) is unwrapped.

Seller id: ``sellerId`` when present, else derived from ``accountId``: ``amzn1.merchant.o.<id>`` gives
``<id>``. A vendor group (``amzn1.vg.<n>``) has no seller id; the account id itself is used, so vendor
credentials are configured under that name (``[sellers."amzn1.vg.6213651"]`` in the sellers file) and
the documents are stored under it. Nothing is dropped for want of a seller id; which credentials an
account is served with is :func:`spreports.accounts.credentials_for`'s call.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import AliasChoices, AliasGenerator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel, to_pascal

from spreports.errors import InvalidNotification
from spreports.ids import ID_PATTERN
from spreports.task_arguments import DocumentRequest

REPORT_PROCESSING_FINISHED = "REPORT_PROCESSING_FINISHED"
MERCHANT_ACCOUNT_PREFIX = "amzn1.merchant.o."
VENDOR_GROUP_PREFIX = "amzn1.vg."
_SHOWABLE = re.compile(r"[A-Za-z0-9._-]{1,100}")

ProcessingStatus = Literal["CANCELLED", "DONE", "FATAL"]
NO_PARTNER = "neither sellerId nor accountId: the notification names no selling partner"


def _aliases(name: str) -> AliasChoices:
    return AliasChoices(to_camel(name), to_pascal(name))


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=AliasGenerator(validation_alias=_aliases, serialization_alias=to_camel),
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


class ReportProcessingFinished(_Model):
    """``payload.reportProcessingFinishedNotification``: which report finished, and how."""

    seller_id: str | None = Field(default=None, pattern=ID_PATTERN)
    account_id: str | None = Field(default=None, pattern=ID_PATTERN)
    report_id: str = Field(pattern=ID_PATTERN)
    report_type: str = Field(pattern=ID_PATTERN)
    processing_status: ProcessingStatus
    report_document_id: str | None = Field(default=None, pattern=ID_PATTERN)

    @model_validator(mode="after")
    def _names_a_partner(self) -> ReportProcessingFinished:
        # Older messages carry only sellerId, vendor groups only accountId; with neither, no one owns the report.
        if not self.seller_id and not self.account_id:
            raise ValueError(NO_PARTNER)
        return self


class NotificationPayload(_Model):
    """``payload`` of a REPORT_PROCESSING_FINISHED notification."""

    report_processing_finished_notification: ReportProcessingFinished


class NotificationMetadata(_Model):
    """``notificationMetadata``: who the notification is for and its unique id."""

    application_id: str = Field(min_length=1)
    notification_id: str = Field(pattern=ID_PATTERN)
    subscription_id: str | None = None
    publish_time: str | None = None


class ReportProcessingFinishedNotification(_Model):
    """A REPORT_PROCESSING_FINISHED notification as Amazon delivers it to SQS."""

    notification_type: Literal["REPORT_PROCESSING_FINISHED"]
    payload: NotificationPayload
    notification_metadata: NotificationMetadata
    notification_version: str | None = None
    payload_version: str | None = None
    event_time: str | None = None

    @property
    def report(self) -> ReportProcessingFinished:
        """The payload's report fields."""
        return self.payload.report_processing_finished_notification

    @property
    def notification_id(self) -> str:
        """Amazon's unique id of this notification (the same for every redelivery of it)."""
        return self.notification_metadata.notification_id

    @property
    def application_id(self) -> str:
        """The SP-API application the notification was sent for."""
        return self.notification_metadata.application_id

    @property
    def seller_id(self) -> str:
        """The selling partner: ``sellerId``, else derived from ``accountId`` (see the module docstring)."""
        return partner_of(self.report.seller_id, self.report.account_id)

    def retrieval_request(self) -> DocumentRequest | None:
        """The retrieval task's arguments, or None when there is no document (CANCELLED, FATAL without one)."""
        report = self.report
        if report.processing_status == "CANCELLED" or report.report_document_id is None:
            return None
        return DocumentRequest(
            seller_id=self.seller_id,
            report_document_id=report.report_document_id,
            report_id=report.report_id,
            report_type=report.report_type,
            processing_status=report.processing_status,
            notification_id=self.notification_id,
        )


def partner_of(seller_id: str | None, account_id: str | None) -> str:
    """The selling partner's name: ``seller_id``, else derived from ``account_id`` (see the module docstring)."""
    if seller_id:
        return seller_id
    if not account_id:
        raise InvalidNotification(NO_PARTNER, kind="wrong-shape")
    if account_id.startswith(MERCHANT_ACCOUNT_PREFIX) and len(account_id) > len(MERCHANT_ACCOUNT_PREFIX):
        return account_id.removeprefix(MERCHANT_ACCOUNT_PREFIX)
    # Vendor groups (amzn1.vg.<n>) and any future account form: the account id names the partner.
    return account_id


def parse_notification(body: str | bytes, *, application_id: str | None = None) -> ReportProcessingFinishedNotification:
    """Parse an SQS message body; raise :class:`InvalidNotification` with a short reason and a ``kind``.

    ``application_id``, when given, must match ``notificationMetadata.applicationId`` (kind
    ``other-application``). The reason names the problem, never the body's content beyond a short id.
    """
    data = _json_object(body)
    if data.get("Type") == "Notification" and isinstance(data.get("Message"), str):
        data = _json_object(data["Message"])
    notification_type = data.get("notificationType", data.get("NotificationType"))
    if notification_type is None:
        raise InvalidNotification("no notificationType", kind="wrong-shape")
    if notification_type != REPORT_PROCESSING_FINISHED:
        raise InvalidNotification(f"notification type {_shown(notification_type)} is not ours", kind="other-type")
    try:
        notification = ReportProcessingFinishedNotification.model_validate(data)
    except ValidationError as exc:
        raise InvalidNotification(_describe(exc), kind="wrong-shape") from None
    if application_id is not None and notification.application_id != application_id:
        raise InvalidNotification(
            f"application {_shown(notification.application_id)} is not ours", kind="other-application"
        )
    report = notification.report
    if report.processing_status == "DONE" and report.report_document_id is None:
        raise InvalidNotification("processingStatus DONE without reportDocumentId", kind="wrong-shape")
    return notification


def _json_object(body: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a hostile body nested thousands of levels deep must not stop the relay.
        raise InvalidNotification("body is not JSON", kind="not-json") from None
    if not isinstance(data, dict):
        raise InvalidNotification(f"body is a JSON {type(data).__name__}, not an object", kind="wrong-shape")
    return data


def _describe(exc: ValidationError) -> str:
    # Only the location and pydantic's message: the offending input value is never echoed.
    error = exc.errors(include_input=False, include_url=False)[0]
    location = ".".join(to_camel(str(part)) if isinstance(part, str) else str(part) for part in error["loc"])
    return f"{location or 'body'}: {error['msg'].removeprefix('Value error, ')}" + (
        f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    )


def _shown(value: object) -> str:
    # Echo a value only when it looks like an identifier: a body may carry anything, even a token.
    if isinstance(value, str) and _SHOWABLE.fullmatch(value):
        return repr(value)
    return "(not an identifier)"
