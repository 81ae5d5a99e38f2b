"""Amazon's notifications to the product's SQS queue: a destination per region, a subscription per seller.

:func:`set_up` is idempotent: it reuses the application's destination for the queue ARN (one per
region: destinations are regional) and each seller's existing subscription, and understands 409
(someone else created it meanwhile) as "already there".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from spreports.errors import Conflict, InvalidRequest
from spreports.notifications import REPORT_PROCESSING_FINISHED
from spreports.settings import Settings
from spreports.spapi import Destination, SpapiClient, Subscription

DESTINATION_NAME = "spreports"
PAYLOAD_VERSION = "1.0"


@dataclass(frozen=True)
class SellerSubscription:
    """One seller's subscription after set-up."""

    seller_id: str
    region: str
    state: str
    subscription_id: str | None = None
    destination_id: str | None = None


def set_up(settings: Settings, store: redis.Redis, queue_arn: str, sellers: Sequence[str]) -> list[SellerSubscription]:
    """The idempotent set-up: a destination per region of the sellers, then one subscription per seller."""
    destinations: dict[str, str] = {}
    results = []
    for seller_id in sellers:
        region = settings.region_of(seller_id)
        if region not in destinations:
            destinations[region] = ensure_destination(settings, store, region, queue_arn)
        results.append(ensure_subscription(settings, store, seller_id, destinations[region]))
    return results


def ensure_destination(settings: Settings, store: redis.Redis, region: str, queue_arn: str) -> str:
    """The id of the application's destination for ``queue_arn`` in ``region``, created when missing."""
    client = SpapiClient.grantless(settings, redis=store, region=region)
    existing = _find_destination(client.get_destinations(), queue_arn)
    if existing is not None:
        return existing
    try:
        return client.create_destination(DESTINATION_NAME, queue_arn).destination_id
    except InvalidRequest:
        # Created meanwhile (409), or Amazon's 400 "A destination with arn ... already exists": list again.
        found = _find_destination(client.get_destinations(), queue_arn)
        if found is None:
            raise
        return found


def ensure_subscription(
    settings: Settings, store: redis.Redis, seller_id: str, destination_id: str
) -> SellerSubscription:
    """Subscribe ``seller_id`` to REPORT_PROCESSING_FINISHED on ``destination_id`` unless it already is."""
    client = SpapiClient.for_seller(settings, seller_id, redis=store)
    region = settings.region_of(seller_id)
    subscription = client.get_subscription(REPORT_PROCESSING_FINISHED)
    state = "already subscribed"
    if subscription is None:
        try:
            subscription = client.create_subscription(REPORT_PROCESSING_FINISHED, destination_id, PAYLOAD_VERSION)
            state = "subscribed"
        except Conflict:
            subscription = client.get_subscription(REPORT_PROCESSING_FINISHED)
            if subscription is None:
                raise
    if subscription.destination_id != destination_id:
        state = "subscribed to ANOTHER destination (delete it first to move it)"
    return SellerSubscription(seller_id, region, state, subscription.subscription_id, subscription.destination_id)


def destinations_by_region(settings: Settings, store: redis.Redis) -> dict[str, list[Destination]]:
    """The application's destinations in each region of the configured sellers."""
    regions = sorted({settings.region_of(s) for s in settings.sellers()} or {settings.spapi.region})
    return {
        region: list(SpapiClient.grantless(settings, redis=store, region=region).get_destinations())
        for region in regions
    }


def subscription_of(settings: Settings, store: redis.Redis, seller_id: str) -> Subscription | None:
    """The seller's REPORT_PROCESSING_FINISHED subscription, if any."""
    return SpapiClient.for_seller(settings, seller_id, redis=store).get_subscription(REPORT_PROCESSING_FINISHED)


def _find_destination(destinations: Sequence[Destination], queue_arn: str) -> str | None:
    for destination in destinations:
        sqs = destination.resource.sqs
        if sqs is not None and sqs.arn == queue_arn:
            return destination.destination_id
    return None
