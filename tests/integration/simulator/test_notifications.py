"""Notifications v1 on the simulator, and REPORT_PROCESSING_FINISHED messages reaching moto's SQS."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import jsonschema
import pytest
import requests

from spreports.simulator import DocumentSpec, Simulator
from tests.sim import lwa_token, validate_notification, validate_response

RPF = "REPORT_PROCESSING_FINISHED"


def call(sim: Simulator, operation: str, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
    response = requests.request(method, sim.url + path, headers={"x-amz-access-token": token}, timeout=30, **kwargs)
    validate_response(operation, response)
    return response


def queue_arn(queue_url: str) -> str:
    sqs = boto3.client("sqs")
    arn: str = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def receive(queue_url: str, count: int, timeout: float = 30) -> list[str]:
    sqs = boto3.client("sqs")
    bodies: list[str] = []
    deadline = time.monotonic() + timeout
    while len(bodies) < count and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


@pytest.fixture
def subscribed(simulator: Simulator, sqs_queue_url: str) -> str:
    """Destination + subscription made through the API, as an application does it."""
    grantless = lwa_token(simulator, grantless=True)
    destination = call(simulator, "createDestination", "POST", "/notifications/v1/destinations", grantless,
                       json={"name": "reports", "resourceSpecification": {"sqs": {"arn": queue_arn(sqs_queue_url)}}}).json()  # fmt: skip
    destination_id = destination["payload"]["destinationId"]
    call(simulator, "createSubscription", "POST", f"/notifications/v1/subscriptions/{RPF}", lwa_token(simulator),
         json={"payloadVersion": "1.0", "destinationId": destination_id})  # fmt: skip
    return sqs_queue_url


def test_destinations_and_subscriptions_api(simulator: Simulator, sqs_queue_url: str) -> None:
    grantless, seller = lwa_token(simulator, grantless=True), lwa_token(simulator)
    arn = queue_arn(sqs_queue_url)
    body = {"name": "reports", "resourceSpecification": {"sqs": {"arn": arn}}}
    destination = call(
        simulator, "createDestination", "POST", "/notifications/v1/destinations", grantless, json=body
    ).json()["payload"]
    assert destination["resource"]["sqs"]["arn"] == arn
    assert (
        call(simulator, "createDestination", "POST", "/notifications/v1/destinations", grantless, json=body).status_code
        == 409
    )
    assert (
        call(simulator, "createDestination", "POST", "/notifications/v1/destinations", seller, json=body).status_code
        == 403
    )
    bad = {"name": "x", "resourceSpecification": {"sqs": {"arn": "not-an-arn"}}}
    assert (
        call(simulator, "createDestination", "POST", "/notifications/v1/destinations", grantless, json=bad).status_code
        == 400
    )
    listed = call(simulator, "getDestinations", "GET", "/notifications/v1/destinations", grantless).json()["payload"]
    assert [d["destinationId"] for d in listed] == [destination["destinationId"]]
    path = f"/notifications/v1/destinations/{destination['destinationId']}"
    assert call(simulator, "getDestination", "GET", path, grantless).json()["payload"] == destination

    sub_body = {"payloadVersion": "1.0", "destinationId": destination["destinationId"]}
    created = call(
        simulator, "createSubscription", "POST", f"/notifications/v1/subscriptions/{RPF}", seller, json=sub_body
    ).json()["payload"]
    assert (
        call(
            simulator, "createSubscription", "POST", f"/notifications/v1/subscriptions/{RPF}", seller, json=sub_body
        ).status_code
        == 409
    )
    missing = {"payloadVersion": "1.0", "destinationId": "nope"}
    assert (
        call(
            simulator, "createSubscription", "POST", f"/notifications/v1/subscriptions/{RPF}", seller, json=missing
        ).status_code
        == 400
    )
    assert (
        call(simulator, "getSubscription", "GET", f"/notifications/v1/subscriptions/{RPF}", seller).json()["payload"]
        == created
    )
    listed_subs = call(
        simulator,
        "getSubscriptions",
        "GET",
        "/notifications/v1/subscriptions",
        seller,
        params={"notificationTypes": RPF},
    ).json()
    assert listed_subs["payload"]["subscriptions"] == [created]
    assert call(simulator, "getSubscriptions", "GET", "/notifications/v1/subscriptions", seller).status_code == 400
    by_id = f"/notifications/v1/subscriptions/{RPF}/{created['subscriptionId']}"
    assert call(simulator, "getSubscriptionById", "GET", by_id, grantless).json()["payload"] == created
    assert call(simulator, "deleteSubscriptionById", "DELETE", by_id, grantless).json() == {}
    assert call(simulator, "getSubscriptionById", "GET", by_id, grantless).status_code == 404
    assert (
        call(simulator, "getSubscription", "GET", f"/notifications/v1/subscriptions/{RPF}", seller).status_code == 404
    )
    assert call(simulator, "deleteDestination", "DELETE", path, grantless).json() == {}
    assert call(simulator, "getDestination", "GET", path, grantless).status_code == 404
    test_path = f"/notifications/v1/subscriptions/{RPF}/testNotification"
    assert call(simulator, "sendTestNotification", "POST", test_path, grantless, json={}).status_code == 400


def test_finished_reports_notify_the_subscribed_queue_per_the_schema(simulator: Simulator, subscribed: str) -> None:
    token = lwa_token(simulator)
    created = call(simulator, "createReport", "POST", "/reports/2021-06-30/reports", token,
                   json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": ["ATVPDKIKX0DER"]}).json()  # fmt: skip
    [body] = receive(subscribed, 1)
    notification = validate_notification(body)
    finished = notification["payload"]["reportProcessingFinishedNotification"]
    assert finished["reportId"] == created["reportId"] and finished["processingStatus"] == "DONE"
    assert (
        finished["sellerId"] == simulator.seller_id
        and finished["accountId"] == f"amzn1.merchant.o.{simulator.seller_id}"
    )
    assert finished["reportDocumentId"] == simulator.report(created["reportId"])["reportDocumentId"]
    assert notification["notificationMetadata"]["applicationId"] == simulator.application_id
    assert notification["payloadVersion"] == "1.0"


def test_notification_faults(simulator: Simulator, sqs_queue_url: str) -> None:
    simulator.subscribe_queue(sqs_queue_url)
    simulator.set_faults(duplicate_notifications=1, foreign_notifications=1)
    simulator.add_document(DocumentSpec(size=10), notify=True)
    bodies = [validate_notification(b) for b in receive(sqs_queue_url, 3)]
    ids = [b["notificationMetadata"]["notificationId"] for b in bodies]
    apps = [b["notificationMetadata"]["applicationId"] for b in bodies]
    assert len(bodies) == 3 and len(set(ids)) == 2
    assert apps.count(simulator.application_id) == 2 and len(set(apps)) == 2

    simulator.set_faults(malformed_notifications=2)
    simulator.add_document(DocumentSpec(size=10), notify=True)
    simulator.add_document(DocumentSpec(size=10), notify=True)
    malformed = receive(sqs_queue_url, 2)
    assert len(malformed) == 2
    for body in malformed:
        with pytest.raises((ValueError, jsonschema.ValidationError)):
            validate_notification(body)
    assert any(_is_json(b) for b in malformed) and not all(_is_json(b) for b in malformed)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_every_sent_notification_is_recorded(simulator: Simulator, sqs_queue_url: str) -> None:
    simulator.subscribe_queue(sqs_queue_url)
    simulator.set_faults(stuck_reports=1)
    token = lwa_token(simulator)
    created = call(simulator, "createReport", "POST", "/reports/2021-06-30/reports", token,
                   json={"reportType": "GET_MERCHANT_LISTINGS_ALL_DATA", "marketplaceIds": ["ATVPDKIKX0DER"]}).json()  # fmt: skip
    assert simulator.finish_report(created["reportId"], "FATAL")["processingStatus"] == "FATAL"
    with pytest.raises(ValueError):
        simulator.finish_report(created["reportId"], "DONE")
    sent = simulator.wait_for_notifications(1)
    assert sent[0].queue_url == sqs_queue_url and sent[0].error is None and sent[0].message_id
    listed = requests.get(f"{simulator.url}/_sim/notifications", timeout=30).json()["notifications"]
    assert validate_notification(listed[0]["body"])
