"""The REPORT_PROCESSING_FINISHED model: Amazon's schema, real-world variations, and clear rejections."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from spreports.errors import InvalidNotification, PermanentError
from spreports.notifications import parse_notification
from tests.models import load
from tests.unit.relay.messages import APPLICATION_ID, BAD_BODIES, OTHER_APPLICATION_ID, notification


def _schema() -> dict[str, Any]:
    return load("ReportProcessingFinishedNotification.json")


def test_amazons_own_examples_parse() -> None:
    examples = _schema()["examples"]
    seller, vendor = (parse_notification(json.dumps(example)) for example in examples)
    assert seller.seller_id == "A3TH9S8BH6GOGM"
    assert seller.report.processing_status == "CANCELLED"
    assert seller.notification_id == "d0e9e693-c3ad-4373-979f-ed4ec98dd746"
    assert seller.application_id == "amzn1.sellerapps.app.aacccfff-4455-4b7c-4422-664ecacdd336"
    # The vendor example has no sellerId: the vendor group's account id names the partner.
    assert vendor.report.seller_id is None
    assert vendor.seller_id == "amzn1.vg.6213651"


def test_builder_output_is_valid_against_amazons_schema() -> None:
    # Our test messages must be what Amazon would send, or the relay tests prove little.
    jsonschema.validate(notification(), _schema())


def test_done_becomes_a_retrieval_request_with_ids_only() -> None:
    data = notification(status="DONE", notification_id="n-1")
    request = parse_notification(json.dumps(data)).retrieval_request()
    assert request is not None
    report = data["payload"]["reportProcessingFinishedNotification"]
    assert request.task_kwargs() == {
        "seller_id": "A3TH9S8BH6GOGM",
        "report_document_id": report["reportDocumentId"],
        "report_id": report["reportId"],
        "report_type": "GET_MERCHANT_LISTINGS_ALL_DATA",
        "processing_status": "DONE",
        "notification_id": "n-1",
    }
    assert request.task_id == "notification-n-1"


def test_fatal_with_document_is_retrieved_as_fatal() -> None:
    request = parse_notification(json.dumps(notification(status="FATAL"))).retrieval_request()
    assert request is not None and request.processing_status == "FATAL"


@pytest.mark.parametrize(("status", "document"), [("CANCELLED", "auto"), ("CANCELLED", None), ("FATAL", None)])
def test_no_document_means_no_request(status: str, document: str | None) -> None:
    parsed = parse_notification(json.dumps(notification(status=status, document_id=document)))
    assert parsed.retrieval_request() is None


@pytest.mark.parametrize("version", ["2020-09-04", "1.0", "2021-06-30", "2099-01-01-beta"])
def test_any_version_string_is_accepted(version: str) -> None:
    assert parse_notification(json.dumps(notification(version=version))).report.processing_status == "DONE"


def test_unknown_fields_are_ignored_and_unused_fields_optional() -> None:
    data = notification()
    data["brandNewField"] = {"x": 1}
    data["payload"]["reportProcessingFinishedNotification"]["marketplaceIds"] = ["ATVPDKIKX0DER"]
    data["notificationMetadata"]["newMeta"] = 1
    for unused in ("notificationVersion", "payloadVersion", "eventTime"):
        del data[unused]
    del data["notificationMetadata"]["subscriptionId"]
    assert parse_notification(json.dumps(data).encode()).seller_id == "A3TH9S8BH6GOGM"


@pytest.mark.parametrize("seller_id", [None, ""])
def test_seller_id_null_or_empty_is_derived_from_the_merchant_account(seller_id: str | None) -> None:
    data = notification(seller_id=None, account_id="amzn1.merchant.o.A1B2C3D4E5")
    data["payload"]["reportProcessingFinishedNotification"]["sellerId"] = seller_id
    if seller_id == "":
        # An empty sellerId fails the id pattern: it is not an id.
        with pytest.raises(InvalidNotification):
            parse_notification(json.dumps(data))
        return
    assert parse_notification(json.dumps(data)).seller_id == "A1B2C3D4E5"


def test_a_message_without_account_id_uses_its_seller_id() -> None:
    # Messages from before accountId existed carry only sellerId: still ours to retrieve.
    data = notification(seller_id="A1OLDSELLER")
    del data["payload"]["reportProcessingFinishedNotification"]["accountId"]
    parsed = parse_notification(json.dumps(data))
    assert parsed.seller_id == "A1OLDSELLER"
    request = parsed.retrieval_request()
    assert request is not None and request.seller_id == "A1OLDSELLER"


def test_a_vendor_notification_is_named_by_its_account() -> None:
    data = notification(seller_id=None, account_id="amzn1.vg.6213651")
    parsed = parse_notification(json.dumps(data))
    assert parsed.seller_id == "amzn1.vg.6213651"
    request = parsed.retrieval_request()
    assert request is not None and request.seller_id == "amzn1.vg.6213651"


def test_neither_seller_nor_account_is_a_clear_rejection() -> None:
    data = notification(seller_id=None)
    del data["payload"]["reportProcessingFinishedNotification"]["accountId"]
    with pytest.raises(InvalidNotification) as caught:
        parse_notification(json.dumps(data))
    assert caught.value.kind == "wrong-shape"
    assert str(caught.value) == (
        "payload.reportProcessingFinishedNotification: neither sellerId nor accountId: "
        "the notification names no selling partner"
    )


def test_pascal_case_envelope_is_accepted() -> None:
    data = notification()
    report = data["payload"]["reportProcessingFinishedNotification"]
    pascal = {
        "NotificationType": "REPORT_PROCESSING_FINISHED",
        "Payload": {"ReportProcessingFinishedNotification": {k[0].upper() + k[1:]: v for k, v in report.items()}},
        "NotificationMetadata": {"ApplicationId": APPLICATION_ID, "NotificationId": "n-2"},
    }
    parsed = parse_notification(json.dumps(pascal))
    assert parsed.notification_id == "n-2" and parsed.report.report_id == report["reportId"]


def test_sns_envelope_is_unwrapped() -> None:
    inner = notification(notification_id="n-3")
    wrapped = {"Type": "Notification", "MessageId": "x", "TopicArn": "arn:aws:sns:x", "Message": json.dumps(inner)}
    assert parse_notification(json.dumps(wrapped)).notification_id == "n-3"


def test_application_filter() -> None:
    ours = json.dumps(notification())
    assert parse_notification(ours, application_id=APPLICATION_ID)
    with pytest.raises(InvalidNotification) as caught:
        parse_notification(ours, application_id=OTHER_APPLICATION_ID)
    assert caught.value.kind == "other-application"


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_each_bad_kind_is_rejected_with_its_kind(kind: str) -> None:
    with pytest.raises(InvalidNotification) as caught:
        parse_notification(BAD_BODIES[kind], application_id=APPLICATION_ID)
    assert caught.value.kind == kind
    assert isinstance(caught.value, PermanentError)
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: [d["payload"]["reportProcessingFinishedNotification"].pop(k) for k in ("accountId", "sellerId")], "neither sellerId nor accountId"),
        (lambda d: d["payload"]["reportProcessingFinishedNotification"].update(processingStatus="IN_QUEUE"), "processingStatus"),
        (lambda d: d["payload"]["reportProcessingFinishedNotification"].pop("reportDocumentId"), "DONE without reportDocumentId"),
        (lambda d: d["notificationMetadata"].pop("notificationId"), "notificationId: Field required"),
        (lambda d: d["payload"]["reportProcessingFinishedNotification"].update(sellerId="../../etc"), "sellerId"),
        (lambda d: d.update(payload=[]), "payload"),
    ],
)  # fmt: skip
def test_wrong_shapes_give_a_short_reason(mutate: Any, reason: str) -> None:
    data = notification()
    mutate(data)
    with pytest.raises(InvalidNotification) as caught:
        parse_notification(json.dumps(data))
    assert caught.value.kind == "wrong-shape"
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe not utf-8", "", "[1, 2]", '"a string"', "null", "[" * 100_000 + "]" * 100_000],
    ids=["not-utf8", "empty", "array", "string", "null", "nested-100000-deep"],
)
def test_non_objects_are_rejected(body: str | bytes) -> None:
    with pytest.raises(InvalidNotification):
        parse_notification(body)


def test_reasons_never_echo_the_body() -> None:
    data = notification()
    data["payload"]["reportProcessingFinishedNotification"]["reportId"] = "https://secret.example/?X-Amz-Signature=abc"
    with pytest.raises(InvalidNotification) as caught:
        parse_notification(json.dumps(data))
    assert "Signature" not in str(caught.value) and "secret" not in str(caught.value)
    for shown in ({"notificationType": "Atza|token"}, {"notificationType": "X" * 5000}):
        with pytest.raises(InvalidNotification) as caught:
            parse_notification(json.dumps(shown))
        assert "Atza" not in str(caught.value) and len(str(caught.value)) < 120
    long_type = json.dumps({"notificationType": "X" * 5000})
    with pytest.raises(InvalidNotification) as caught:
        parse_notification(long_type)
    assert len(str(caught.value)) < 120
