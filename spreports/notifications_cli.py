"""``spreports relay`` and ``spreports notifications setup|status``: receiving Amazon's notifications.

``setup`` is idempotent: it reuses the application's destination for the queue ARN (one per
region: destinations are regional) and each seller's existing subscription, and understands 409
(someone else created it meanwhile) as "already there".
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import click
import redis

from spreports.errors import Conflict, InvalidRequest, SpreportsError
from spreports.notifications import REPORT_PROCESSING_FINISHED
from spreports.redis_server import RedisUnavailableError, broker_url, connect
from spreports.settings import Settings
from spreports.spapi import Destination, SpapiClient

DESTINATION_NAME = "spreports"
PAYLOAD_VERSION = "1.0"


@click.command("relay")
@click.option("--check", is_flag=True, help="Exit 0 if a relay on this host has a fresh heartbeat, else 1.")
def relay_command(check: bool) -> None:
    """Relay REPORT_PROCESSING_FINISHED notifications from SQS into Celery (SIGTERM: finish the batch, exit)."""
    from workers.relay_process import main as relay_main

    sys.exit(relay_main(check_only=check))


@click.group("notifications")
def notifications() -> None:
    """Amazon's REPORT_PROCESSING_FINISHED notifications to your SQS queue."""


@dataclass(frozen=True)
class SellerSubscription:
    """One line of setup or status output."""

    seller_id: str
    region: str
    state: str
    subscription_id: str | None = None
    destination_id: str | None = None


@notifications.command("setup")
@click.option("--queue-arn", required=True, help="ARN of the SQS queue Amazon should deliver to.")
@click.option("--seller", "sellers", multiple=True, help="Seller to subscribe (repeatable; default: all configured).")
def setup(queue_arn: str, sellers: Sequence[str]) -> None:
    """Create (or reuse) the destination for the queue and subscribe each seller to REPORT_PROCESSING_FINISHED."""
    from spreports.cli import UserError, settings_or_exit

    settings = settings_or_exit()
    if not queue_arn.startswith("arn:aws:sqs:") or queue_arn.count(":") != 5:
        raise UserError("--queue-arn must look like arn:aws:sqs:<region>:<account>:<queue>")
    chosen = _sellers(settings, sellers)
    try:
        results = set_up(settings, queue_arn, chosen)
    except (SpreportsError, RedisUnavailableError) as exc:
        raise UserError(str(exc)) from None
    except redis.RedisError as exc:
        raise UserError(f"Redis failed: {type(exc).__name__}") from None
    for line in results:
        click.echo(
            f"{line.seller_id} ({line.region}): {line.state} subscription={line.subscription_id} destination={line.destination_id}"
        )


@notifications.command("status")
def status() -> None:
    """List the application's destinations and each configured seller's subscription."""
    from spreports.cli import UserError, settings_or_exit

    settings = settings_or_exit()
    try:
        for region, destinations in _destinations_by_region(settings).items():
            for destination in destinations:
                sqs = destination.resource.sqs
                click.echo(
                    f"destination {destination.destination_id} ({region}) {destination.name}: {sqs.arn if sqs else '(not SQS)'}"
                )
        for seller_id in sorted(settings.sellers()):
            subscription = _client(settings, seller_id).get_subscription(REPORT_PROCESSING_FINISHED)
            region = settings.region_of(seller_id)
            if subscription is None:
                click.echo(f"{seller_id} ({region}): not subscribed")
            else:
                click.echo(
                    f"{seller_id} ({region}): subscribed subscription={subscription.subscription_id} "
                    f"destination={subscription.destination_id} payloadVersion={subscription.payload_version}"
                )
    except (SpreportsError, RedisUnavailableError) as exc:
        raise UserError(str(exc)) from None
    except redis.RedisError as exc:
        raise UserError(f"Redis failed: {type(exc).__name__}") from None


def set_up(settings: Settings, queue_arn: str, sellers: Sequence[str]) -> list[SellerSubscription]:
    """The idempotent set-up: a destination per region of the sellers, then one subscription per seller."""
    destinations: dict[str, str] = {}
    results = []
    for seller_id in sellers:
        region = settings.region_of(seller_id)
        if region not in destinations:
            destinations[region] = ensure_destination(settings, region, queue_arn)
        results.append(ensure_subscription(settings, seller_id, destinations[region]))
    return results


def ensure_destination(settings: Settings, region: str, queue_arn: str) -> str:
    """The id of the application's destination for ``queue_arn`` in ``region``, created when missing."""
    client = SpapiClient.grantless(settings, redis=_redis(settings), region=region)
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


def ensure_subscription(settings: Settings, seller_id: str, destination_id: str) -> SellerSubscription:
    """Subscribe ``seller_id`` to REPORT_PROCESSING_FINISHED on ``destination_id`` unless it already is."""
    client = _client(settings, seller_id)
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


def _find_destination(destinations: Sequence[Destination], queue_arn: str) -> str | None:
    for destination in destinations:
        sqs = destination.resource.sqs
        if sqs is not None and sqs.arn == queue_arn:
            return destination.destination_id
    return None


def _destinations_by_region(settings: Settings) -> dict[str, list[Destination]]:
    regions = sorted({settings.region_of(s) for s in settings.sellers()} or {settings.spapi.region})
    return {
        region: list(SpapiClient.grantless(settings, redis=_redis(settings), region=region).get_destinations())
        for region in regions
    }


def _sellers(settings: Settings, chosen: Sequence[str]) -> list[str]:
    from spreports.cli import UserError

    configured = settings.sellers()
    if not configured:
        raise UserError(
            "no sellers configured (SPREPORTS_SELLER_ID + SPREPORTS_LWA__REFRESH_TOKEN, or the sellers file)"
        )
    unknown = [s for s in chosen if s not in configured]
    if unknown:
        raise UserError(f"seller {unknown[0]} is not configured")
    return list(chosen) or sorted(configured)


def _client(settings: Settings, seller_id: str) -> SpapiClient:
    return SpapiClient.for_seller(settings, seller_id, redis=_redis(settings))


def _redis(settings: Settings) -> redis.Redis:
    return connect(broker_url(settings))
