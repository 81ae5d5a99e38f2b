"""Notifications API v1: destinations (grantless) and subscriptions, answers wrapped in ``payload``."""

from __future__ import annotations

import re
import uuid
from typing import Any

from spreports.simulator.http import ApiError, Call, Reply, invalid, not_found
from spreports.simulator.world import Destination, Subscription

SQS_ARN = re.compile(r"^arn:aws:sqs:\S+:\S+:\S+")
NOTIFICATION_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{2,127}$")
GRANTLESS = frozenset({
    "getSubscriptionById", "deleteSubscriptionById", "getDestinations", "createDestination", "getDestination",
    "deleteDestination", "sendTestNotification",
})  # fmt: skip


def _destination_json(destination: Destination) -> dict[str, Any]:
    return {
        "destinationId": destination.destination_id,
        "name": destination.name,
        "resource": {"sqs": {"arn": destination.arn}},
    }


def _notification_type(value: str) -> str:
    if not NOTIFICATION_TYPE.match(value):
        raise invalid("notificationType;", f"Invalid notification type {value[:64]}")
    return value


def get_destinations(call: Call) -> Reply:
    """GET /notifications/v1/destinations -> {payload: [Destination]}."""
    with call.core.world.lock:
        return 200, {"payload": [_destination_json(d) for d in call.core.world.destinations.values()]}


def create_destination(call: Call) -> Reply:
    """POST /notifications/v1/destinations (SQS only); 409 when the ARN is registered already."""
    body = call.json_body()
    name = body.get("name")
    if not isinstance(name, str) or not name or len(name) > 256:
        raise invalid("name;", "name is required (at most 256 characters)")
    spec = body.get("resourceSpecification")
    sqs = spec.get("sqs") if isinstance(spec, dict) else None
    arn = sqs.get("arn") if isinstance(sqs, dict) else None
    if not isinstance(arn, str) or len(arn) > 1000 or not SQS_ARN.match(arn) or len(arn.split(":")) != 6:
        raise invalid(
            "resourceSpecification;",
            "resourceSpecification.sqs.arn must be an SQS queue ARN (EventBridge is not simulated)",
        )
    world = call.core.world
    with world.lock:
        if any(d.arn == arn for d in world.destinations.values()):
            raise ApiError(409, "Conflict", f"A destination with arn {arn} already exists for the application")
        destination = Destination(str(uuid.uuid4()), name, arn)
        world.destinations[destination.destination_id] = destination
    return 200, {"payload": _destination_json(destination)}


def get_destination(call: Call, destinationId: str) -> Reply:
    """GET /notifications/v1/destinations/{destinationId}."""
    destination = call.core.world.destinations.get(destinationId)
    if destination is None:
        raise not_found(f"Destination {destinationId}")
    return 200, {"payload": _destination_json(destination)}


def delete_destination(call: Call, destinationId: str) -> Reply:
    """DELETE /notifications/v1/destinations/{destinationId} -> {}."""
    with call.core.world.lock:
        if call.core.world.destinations.pop(destinationId, None) is None:
            raise not_found(f"Destination {destinationId}")
    return 200, {}


def _subscriptions(call: Call, notification_type: str) -> list[Subscription]:
    return call.core.world.subscriptions.setdefault((call.seller_id, notification_type), [])


def create_subscription(call: Call, notificationType: str) -> Reply:
    """POST /notifications/v1/subscriptions/{notificationType}; 409 on a duplicate subscription."""
    notification_type = _notification_type(notificationType)
    body = call.json_body()
    version, destination_id = body.get("payloadVersion"), body.get("destinationId")
    if not isinstance(version, str) or not version:
        raise invalid("payloadVersion;", "One or more required parameters missing")
    if not isinstance(destination_id, str) or not destination_id:
        raise invalid("destinationId;", "One or more required parameters missing")
    directive = body.get("processingDirective")
    if directive is not None and not isinstance(directive, dict):
        raise invalid("processingDirective;", "processingDirective must be an object")
    world = call.core.world
    with world.lock:
        if destination_id not in world.destinations:
            raise invalid("destinationId;", f"No destination with id {destination_id}")
        existing = _subscriptions(call, notification_type)
        if any(s.payload_version == version and s.processing_directive == directive for s in existing):
            raise ApiError(
                409, "StateConflict", f"Subscription already exist for notification type {notification_type}"
            )
        subscription = Subscription(
            call.seller_id, notification_type, str(uuid.uuid4()), version, destination_id, directive
        )
        existing.append(subscription)
    return 200, {"payload": subscription.to_json()}


def get_subscription(call: Call, notificationType: str) -> Reply:
    """GET /notifications/v1/subscriptions/{notificationType}[?payloadVersion=]."""
    version = call.request.args.get("payloadVersion")
    with call.core.world.lock:
        found = [
            s
            for s in _subscriptions(call, _notification_type(notificationType))
            if version in (None, s.payload_version)
        ]
    if not found:
        raise not_found(f"Subscription for notification type {notificationType}")
    return 200, {"payload": found[-1].to_json()}


def get_subscriptions(call: Call) -> Reply:
    """GET /notifications/v1/subscriptions?notificationTypes=X -> {payload: {subscriptions: [...]}}."""
    types = call.query_list("notificationTypes")
    if not types or len(types) != 1:
        raise invalid("notificationTypes;", "Exactly one notification type is required")
    try:
        page_size = int(call.request.args.get("pageSize", "30"))
    except ValueError:
        raise invalid("pageSize;", "pageSize must be an integer") from None
    if not 30 <= page_size <= 100:
        raise invalid("pageSize;", "pageSize must be between 30 and 100")
    version = call.request.args.get("payloadVersion")
    with call.core.world.lock:
        found = [
            s.to_json()
            for s in _subscriptions(call, _notification_type(types[0]))
            if version in (None, s.payload_version)
        ]
    return 200, {"payload": {"subscriptions": found[:page_size]}}


def _by_id(call: Call, notification_type: str, subscription_id: str) -> Subscription:
    for (_, kind), subscriptions in call.core.world.subscriptions.items():
        for subscription in subscriptions:
            if kind == notification_type and subscription.subscription_id == subscription_id:
                return subscription
    raise not_found(f"Subscription {subscription_id}")


def get_subscription_by_id(call: Call, notificationType: str, subscriptionId: str) -> Reply:
    """GET /notifications/v1/subscriptions/{notificationType}/{subscriptionId} (grantless)."""
    with call.core.world.lock:
        return 200, {"payload": _by_id(call, notificationType, subscriptionId).to_json()}


def delete_subscription_by_id(call: Call, notificationType: str, subscriptionId: str) -> Reply:
    """DELETE /notifications/v1/subscriptions/{notificationType}/{subscriptionId} (grantless) -> {}."""
    world = call.core.world
    with world.lock:
        subscription = _by_id(call, notificationType, subscriptionId)
        world.subscriptions[(subscription.seller_id, notificationType)].remove(subscription)
    return 200, {}


def send_test_notification(call: Call, notificationType: str) -> Reply:
    """Sandbox-only in Amazon's model; outside the static sandbox it answers 400."""
    raise invalid("Invalid Input, sendTestNotification is available in the sandbox only", "InvalidInput")


ROUTES: dict[str, tuple[str, str, Any]] = {
    "getSubscriptions": ("GET", "/notifications/v1/subscriptions", get_subscriptions),
    "getSubscription": ("GET", "/notifications/v1/subscriptions/<notificationType>", get_subscription),
    "createSubscription": ("POST", "/notifications/v1/subscriptions/<notificationType>", create_subscription),
    "sendTestNotification": (
        "POST",
        "/notifications/v1/subscriptions/<notificationType>/testNotification",
        send_test_notification,
    ),
    "getSubscriptionById": (
        "GET",
        "/notifications/v1/subscriptions/<notificationType>/<subscriptionId>",
        get_subscription_by_id,
    ),
    "deleteSubscriptionById": (
        "DELETE",
        "/notifications/v1/subscriptions/<notificationType>/<subscriptionId>",
        delete_subscription_by_id,
    ),
    "getDestinations": ("GET", "/notifications/v1/destinations", get_destinations),
    "createDestination": ("POST", "/notifications/v1/destinations", create_destination),
    "getDestination": ("GET", "/notifications/v1/destinations/<destinationId>", get_destination),
    "deleteDestination": ("DELETE", "/notifications/v1/destinations/<destinationId>", delete_destination),
}
