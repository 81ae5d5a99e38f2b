"""``spreports simulator``: run the offline SP-API in the foreground and say how to point the product at it."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import click

from spreports.settings import Settings
from spreports.workers.cli.common import UserError, command_settings, require_local_extra, stop_signal, wait_for
from spreports.workers.cli.values import BoundedFloat

if TYPE_CHECKING:
    from spreports.simulator.server import Simulator


@click.command("simulator", short_help="Run an offline SP-API (needs the local extra).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free one).")
@click.option(
    "--speed",
    default=1.0,
    show_default=True,
    # Finite: a clock running at nan or inf seconds a second would fail every request.
    type=BoundedFloat(0.001, 1e6, inclusive=True),
    help="Simulated seconds per real second.",
)
@click.option("--static-sandbox", is_flag=True, help="Answer only the models' static sandbox examples.")
@click.option("--no-rate-limits", is_flag=True, help="Do not enforce Amazon's usage plans.")
@click.option("--public-url", default=None, help="Base URL others reach it by (e.g. http://simulator:8000 in compose).")
def simulator(
    host: str, port: int, speed: float, static_sandbox: bool, no_rate_limits: bool, public_url: str | None
) -> None:
    """Run an offline SP-API (LWA, Reports, documents, Notifications -> SQS) until Ctrl-C."""
    settings = command_settings()
    require_local_extra("spreports simulator", "werkzeug")
    from spreports.simulator.config import config_from_settings
    from spreports.simulator.server import Simulator

    config = config_from_settings(settings, speed=speed, static_sandbox=static_sandbox, rate_limits=not no_rate_limits)
    try:
        sim = Simulator(config, host, port, public_url)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    stop = stop_signal()  # SIGINT or SIGTERM, whatever the process inherited, from before the announcement
    sim.start()
    try:
        _announce(sim, settings, static_sandbox=static_sandbox, speed=speed, rate_limits=not no_rate_limits)
        wait_for(stop)
    finally:
        click.echo("stopping")
        sim.stop()


def _announce(sim: Simulator, settings: Settings, *, static_sandbox: bool, speed: float, rate_limits: bool) -> None:
    mode = "static sandbox" if static_sandbox else f"speed x{speed:g}, rate limits {'on' if rate_limits else 'off'}"
    click.echo(f"SP-API simulator listening on {sim.url} ({mode})")
    click.echo("Point spreports at it with:")
    configured = {
        "SPREPORTS_LWA__CLIENT_ID": settings.lwa.client_id is not None,
        "SPREPORTS_LWA__CLIENT_SECRET": settings.lwa.client_secret is not None,
        "SPREPORTS_LWA__REFRESH_TOKEN": bool(settings.sellers()),
        "SPREPORTS_SELLER_ID": bool(settings.sellers()),
        "SPREPORTS_SQS__APPLICATION_ID": settings.sqs.application_id is not None,
    }
    for name, value in sim.env().items():
        if configured.get(name):
            click.echo(f"  # {name}: as already configured")
        else:
            click.echo(f"  export {name}={shlex.quote(value)}")
    if len(sim.config.sellers) > 1:
        sellers = ", ".join(s.seller_id for s in sim.config.sellers)
        click.echo(f"  # sellers accepted: {sellers} (from SPREPORTS_SELLERS_FILE)")
    _subscribe(sim, settings.sqs.queue_url)


def _subscribe(sim: Simulator, queue_url: str | None) -> None:
    if not queue_url:
        click.echo("Notifications: none yet; set SPREPORTS_SQS__QUEUE_URL (and AWS_ENDPOINT_URL_SQS for a local SQS)")
        click.echo("  or create a destination and a subscription through the Notifications API.")
        return
    try:
        for seller in sim.config.sellers:
            sim.subscribe_queue(queue_url, seller.seller_id)
    except Exception as exc:  # boto3/botocore: the queue is unreachable or unknown
        reason = type(exc).__name__
        if reason == "NoRegionError":
            reason = "boto3 has no AWS region: set AWS_DEFAULT_REGION (boto3 does not read AWS_REGION)"
        click.echo(f"Notifications: cannot use queue {queue_url}: {reason}", err=True)
        return
    click.echo(f"Notifications: REPORT_PROCESSING_FINISHED -> {queue_url}")
