"""``spreports notifications setup|status``: Amazon's REPORT_PROCESSING_FINISHED notifications to your queue."""

from __future__ import annotations

from collections.abc import Sequence

import click

from spreports.connection import connect
from spreports.settings import Settings
from spreports.workers.cli.common import UserError, check_redis, command_settings


@click.group(short_help="Amazon's notifications to your SQS queue.")
def notifications() -> None:
    """Amazon's REPORT_PROCESSING_FINISHED notifications to your SQS queue."""


@notifications.command("setup")
@click.option("--queue-arn", required=True, help="ARN of the SQS queue Amazon should deliver to.")
@click.option("--seller", "sellers", multiple=True, help="Seller to subscribe (repeatable; default: all configured).")
def setup(queue_arn: str, sellers: Sequence[str]) -> None:
    """Create (or reuse) the destination for the queue and subscribe each seller to REPORT_PROCESSING_FINISHED."""
    from spreports.subscriptions import set_up

    settings = command_settings()
    if not queue_arn.startswith("arn:aws:sqs:") or queue_arn.count(":") != 5:
        raise UserError("--queue-arn must look like arn:aws:sqs:<region>:<account>:<queue>")
    chosen = _sellers(settings, sellers)
    for line in set_up(settings, connect(check_redis(settings)), queue_arn, chosen):
        click.echo(
            f"{line.seller_id} ({line.region}): {line.state} subscription={line.subscription_id} destination={line.destination_id}"
        )


@notifications.command("status")
def status() -> None:
    """List the application's destinations and each configured seller's subscription."""
    from spreports.subscriptions import destinations_by_region, subscription_of

    settings = command_settings()
    store = connect(check_redis(settings))
    for region, destinations in destinations_by_region(settings, store).items():
        for destination in destinations:
            sqs = destination.resource.sqs
            click.echo(
                f"destination {destination.destination_id} ({region}) {destination.name}: {sqs.arn if sqs else '(not SQS)'}"
            )
    for seller_id in sorted(settings.sellers()):
        subscription = subscription_of(settings, store, seller_id)
        region = settings.region_of(seller_id)
        if subscription is None:
            click.echo(f"{seller_id} ({region}): not subscribed")
        else:
            click.echo(
                f"{seller_id} ({region}): subscribed subscription={subscription.subscription_id} "
                f"destination={subscription.destination_id} payloadVersion={subscription.payload_version}"
            )


def _sellers(settings: Settings, chosen: Sequence[str]) -> list[str]:
    configured = settings.sellers()
    if not configured:
        raise UserError(
            "no sellers configured (SPREPORTS_SELLER_ID + SPREPORTS_LWA__REFRESH_TOKEN, or the sellers file)"
        )
    unknown = [s for s in chosen if s not in configured]
    if unknown:
        raise UserError(f"seller {unknown[0]} is not configured")
    return list(chosen) or sorted(configured)
