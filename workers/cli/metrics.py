"""``spreports metrics``: the fleet's Prometheus metrics, served from one place (see :mod:`spreports.metrics`).

Workers keep their counters in the broker's Redis, so one exporter anywhere that reaches it serves the
totals of every worker on every host, with the queue depths read at the same moment. Run exactly one
per deployment (a second one is harmless, but Prometheus would then scrape the same totals twice).
"""

from __future__ import annotations

import click

from spreports.workers.cli.common import UserError, check_redis, command_settings, stop_signal, wait_for
from spreports.workers.cli.values import PORT

DEFAULT_PORT = 9808


@click.command("metrics")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=PORT, help="Port of the /metrics endpoint.")
# Loopback unless told: the endpoint has no login, and the queue depths and failures are the fleet's business.
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every one).")
@click.option("--once", is_flag=True, help="Print the metrics once (Prometheus text format) and exit.")
def metrics(port: int, host: str, once: bool) -> None:
    """Serve the fleet's Prometheus metrics (from Redis) on one port.

    Documents by outcome, bytes, seconds, failures by kind, retries, waits, 429s, queue depths, the
    failure ledger and the FATAL counters of every worker on every host.
    """
    from prometheus_client import CollectorRegistry, generate_latest, start_http_server

    from spreports import names
    from spreports.connection import connect
    from spreports.metrics import FleetCollector

    settings = command_settings()
    registry = CollectorRegistry(auto_describe=False)
    queues = [names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE]
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
    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise UserError(f"cannot listen on {host}:{port} for metrics: {exc.strerror or exc}") from None
    click.echo(f"serving the fleet's metrics on http://{host}:{server.server_port}/metrics", err=True)
    wait_for(stop)  # the server's thread is a daemon: it ends with the process
