"""``spreports config``, ``check`` and ``redis start|stop``: the settings and the embedded Redis."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from spreports.settings import masked
from spreports.workers.cli.common import UserError, command_settings
from spreports.workers.embedded_redis import EmbeddedRedis

if TYPE_CHECKING:
    from spreports.settings import Settings


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
    """Check what a deployment needs, changing nothing; exit 0 when all is well.

    One line per check, ``ok`` or ``FAIL`` with the reason: the broker answers, the storage takes writes,
    LWA gives each seller a token, the SQS queue answers (when set), the schedules file is valid. Then a
    ``warning`` line for each thing that works but will hurt, failed checks or not.
    """
    from spreports.workers.cli import checks

    settings = command_settings()
    found, url = checks.run_broker(settings)
    outcomes = [found]
    click.echo(found.line())
    if settings.broker_is_amqp:
        outcomes.append(checks.delay_queues(settings))
        click.echo(outcomes[-1].line())
    # Each line as soon as its check is done: a token call or an unreachable queue may take seconds.
    for name, call in [
        ("storage", lambda: checks.storage(settings)),
        *checks.credential_checks(settings),
        ("queue", lambda: checks.queue(settings)),
        ("schedules", lambda: checks.schedules(settings)),
    ]:
        outcomes.append(checks.run(name, call))
        click.echo(outcomes[-1].line())
    # Warnings even when a check failed: a Redis that forgets is worth knowing while fixing the rest.
    for warning in _warnings(settings, url):
        click.echo(f"spreports: warning: {warning}", err=True)
    failed = [outcome for outcome in outcomes if not outcome.ok]
    if failed:
        more = f" (and {len(failed) - 1} more failed check(s) above)" if len(failed) > 1 else ""
        raise UserError(f"{failed[0].detail}{more}")


def _warnings(settings: Settings, url: str | None) -> list[str]:
    """What works but will hurt: a Redis that forgets, a sweep with nothing to sweep, no beat re-driving lost
    work, failed documents.

    ``url``: the Redis that answered the broker check (None: none to ask). Each entry of ``found`` is one
    kind of warning, each giving none or more lines.
    """
    from spreports.workers.cli import checks

    found = [
        checks.persistence_warnings(settings, url),
        _sweep_warnings(settings),
        _recovery_warnings(url),
        _ledger_warnings(url),
    ]
    return [warning for warnings in found for warning in warnings]


def _sweep_warnings(settings: Settings) -> list[str]:
    if settings.sqs.report_types or settings.schedules_file is not None:
        return []
    return [
        "the 15-minute sweep has no report types to look for, so a lost notification's document is never caught "
        "up: set SPREPORTS_SQS__REPORT_TYPES or SPREPORTS_SCHEDULES_FILE"
    ]


def _recovery_warnings(url: str | None) -> list[str]:
    from spreports.connection import connect
    from spreports.workers.cli import checks

    warning = None if url is None else checks.recovery_warning(connect(url))
    return [] if warning is None else [warning]


def _ledger_warnings(url: str | None) -> list[str]:
    from spreports.connection import connect
    from spreports.reports.failure_ledger import FailureLedger

    failed = 0 if url is None else FailureLedger(connect(url)).count()
    if not failed:
        return []
    return [
        f"{failed} document(s) failed for good: see `spreports reports failed`, re-drive with "
        "`spreports reports retry-failed`"
    ]


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
