"""``spreports config``, ``check`` and ``redis start|stop``: the settings and the embedded Redis."""

from __future__ import annotations

import json

import click

from spreports.settings import masked
from spreports.workers.cli.common import check_redis, check_storage, command_settings
from spreports.workers.embedded_redis import EmbeddedRedis


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of NAME=value lines.")
def config(as_json: bool) -> None:
    """Print the effective settings, secrets masked."""
    data = masked(command_settings())
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    for name, value in _flatten(data):
        click.echo(f"{name}={'' if value is None else value}")


def _flatten(data: dict[str, object], prefix: str = "SPREPORTS_") -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = []
    for key, value in sorted(data.items()):
        name = f"{prefix}{key}".upper()
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{name}__"))
        else:
            rows.append((name, json.dumps(value) if isinstance(value, list) else value))
    return rows


@click.command()
def check() -> None:
    """Check the settings, Redis and the storage; exit 0 when all is well."""
    from spreports.connection import connect, persistence_warning
    from spreports.ledger import FailureLedger

    settings = command_settings()
    url = check_redis(settings)
    check_storage(settings)
    click.echo(f"settings ok; Redis answers; storage {settings.storage.url} is writable")
    warning = persistence_warning(url)
    if warning is not None:
        click.echo(f"spreports: warning: {warning}", err=True)
    if not settings.sqs.report_types and settings.schedules_file is None:
        click.echo(
            "spreports: warning: the 15-minute sweep has no report types to look for, so a lost notification's "
            "document is never caught up: set SPREPORTS_SQS__REPORT_TYPES or SPREPORTS_SCHEDULES_FILE",
            err=True,
        )
    failed = FailureLedger(connect(url)).count()
    if failed:
        click.echo(
            f"spreports: warning: {failed} document(s) failed for good: see `spreports reports failed`, "
            "re-drive with `spreports reports retry-failed`",
            err=True,
        )


@click.group()
def redis() -> None:
    """The embedded Redis used when SPREPORTS_BROKER_URL is unset."""


@redis.command("start")
def redis_start() -> None:
    """Start the embedded Redis (no-op when it runs) and print its URL."""
    click.echo(EmbeddedRedis(command_settings().data_dir).ensure_running())


@redis.command("stop")
def redis_stop() -> None:
    """Stop the embedded Redis."""
    stopped = EmbeddedRedis(command_settings().data_dir).stop()
    click.echo("stopped" if stopped else "not running")
