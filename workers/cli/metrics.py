"""``spreports metrics``: the fleet's Prometheus metrics, served from one place (see :mod:`spreports.metrics`).

Workers keep their counters in the broker's Redis, so one exporter anywhere that reaches it serves the
totals of every worker on every host, with the queue depths read at the same moment. Run exactly one
per deployment (a second one is harmless, but Prometheus would then scrape the same totals twice).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from spreports.workers.cli.common import UserError, check_redis, command_settings, stop_signal, wait_for
from spreports.workers.cli.values import PORT

if TYPE_CHECKING:
    from spreports.settings import Settings

DEFAULT_PORT = 9808


@click.command("metrics")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=PORT, help="Port of the /metrics endpoint.")
# Loopback unless told: the queue depths and failures are the fleet's business; beyond it, a login is required.
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0: every one; beyond loopback, SPREPORTS_METRICS_BASIC_AUTH is required).",
)
@click.option("--once", is_flag=True, help="Print the metrics once (Prometheus text format) and exit.")
def metrics(port: int, host: str, once: bool) -> None:
    """Serve the fleet's Prometheus metrics (from Redis) on one port.

    Documents by outcome, bytes, seconds, failures by kind, retries, waits, 429s, queue depths, the
    failure ledger and the FATAL counters of every worker on every host. With SPREPORTS_METRICS_BASIC_AUTH,
    every request must carry that login (HTTP basic auth); listening beyond loopback requires it.
    """
    from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app

    from spreports import names
    from spreports.connection import connect
    from spreports.metrics import FleetCollector

    settings = command_settings()
    login = None if once else _login(settings, host)
    registry = CollectorRegistry(auto_describe=False)
    queues = [names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE, names.DATA_QUEUE]
    depths = held = None
    if settings.broker_is_amqp and settings.broker_url:
        from functools import partial

        from spreports.workers.brokers import amqp_depth_reader
        from spreports.workers.held_messages import held_in_delay_queues

        depths = amqp_depth_reader(settings.broker_url, queues)  # RabbitMQ holds the queues, not Redis
        held = partial(held_in_delay_queues, settings.broker_url, settings.rabbitmq_management_url)
    registry.register(FleetCollector(connect(check_redis(settings)), queues, depths, held))
    if once:
        click.echo(generate_latest(registry).decode(), nl=False)
        return
    stop = stop_signal()  # before the line saying it serves
    from spreports.workers.metrics_server import require_login, serve

    app = make_wsgi_app(registry)
    if login is not None:
        app = require_login(app, *login)
    try:
        server = serve(app, host, port)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port} for metrics: {exc.strerror or exc}") from None
    with_login = " (login required)" if login is not None else ""
    click.echo(f"serving the fleet's metrics on http://{host}:{server.server_port}/metrics{with_login}", err=True)
    wait_for(stop)  # the server's thread is a daemon: it ends with the process


def _login(settings: Settings, host: str) -> tuple[str, str] | None:
    """The (user, password) the endpoint asks for; a :class:`UserError` when it would be open beyond loopback."""
    from spreports.settings import basic_auth
    from spreports.workers.flower_security import is_loopback

    if settings.metrics_basic_auth is not None:
        return basic_auth(settings.metrics_basic_auth)  # checked at settings load: cannot raise here
    if not is_loopback(host):
        raise UserError(
            f"metrics would listen on {host or 'every interface'} with no login: set "
            "SPREPORTS_METRICS_BASIC_AUTH=user:password (and basic_auth in Prometheus' scrape config), "
            "or listen on loopback only (--host 127.0.0.1)"
        )
    return None
