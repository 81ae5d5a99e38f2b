"""The ``spreports`` command: one entry point for every process and operation of the product.

Expected mistakes (bad settings, Redis unreachable, bad input) end with one ``spreports: error:``
line and exit status 2, never a traceback and never a secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import click

from spreports import redaction
from spreports.preflight import PreflightError, check_redis, check_storage
from spreports.redis_server import EmbeddedRedis, RedisUnavailableError
from spreports.settings import Settings, SettingsError, load_settings, masked

CELERY_PASSTHROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


class UserError(click.ClickException):
    """An expected mistake: printed as one line, exit status 2."""

    exit_code = 2

    def show(self, file: object = None) -> None:
        click.echo(f"spreports: error: {self.format_message()}", err=True)


def settings_or_exit() -> Settings:
    """Load the settings (a bad value ends the command with one clear line) and set up logging."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        raise UserError(str(exc)) from None
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # urllib3 logs request lines (pre-signed URLs) at DEBUG; the filter is the second guard.
    logging.getLogger("urllib3").setLevel(max(logging.INFO, logging.getLogger().level))
    # botocore logs signed requests at DEBUG and chatter ("Found credentials ...") at INFO.
    logging.getLogger("botocore").setLevel(max(logging.WARNING, logging.getLogger().level))
    redaction.install()
    return settings


def _preflight(*, storage: bool) -> Settings:
    settings = settings_or_exit()
    try:
        check_redis(settings)
        if storage:
            check_storage(settings)
    except (RedisUnavailableError, PreflightError) as exc:
        raise UserError(str(exc)) from None
    return settings


def _run_celery(argv: Sequence[str], *, storage: bool = False) -> None:
    settings = _preflight(storage=storage)
    from workers.app import app

    args = list(argv)
    if argv[0] in ("worker", "beat") and not any(a.startswith(("-l", "--loglevel")) for a in args[1:]):
        args.append(f"--loglevel={settings.log_level}")
    app.start(args)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spreports")
def main() -> None:
    """Scheduled Amazon SP-API reports, retrieved into your storage by a Celery fleet."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of NAME=value lines.")
def config(as_json: bool) -> None:
    """Print the effective settings, secrets masked."""
    settings = settings_or_exit()
    data = masked(settings)
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


@main.command()
def check() -> None:
    """Check the settings, Redis and the storage; exit 0 when all is well."""
    settings = _preflight(storage=True)
    click.echo(f"settings ok; Redis answers; storage {settings.storage.url} is writable")


@main.command(context_settings=CELERY_PASSTHROUGH)
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a Celery worker (any `celery worker` option passes through, e.g. -Q documents -c 4)."""
    _run_celery(["worker", *ctx.args], storage=True)


@main.command(context_settings=CELERY_PASSTHROUGH)
@click.pass_context
def beat(ctx: click.Context) -> None:
    """Run Celery beat (exactly one per deployment); `celery beat` options pass through."""
    _run_celery(["beat", *ctx.args])


@main.command(context_settings=CELERY_PASSTHROUGH)
@click.pass_context
def flower(ctx: click.Context) -> None:
    """Run Flower, the live view of every task (`celery flower` options pass through)."""
    _run_celery(["flower", *ctx.args])


@main.group()
def redis() -> None:
    """The embedded Redis used when SPREPORTS_BROKER_URL is unset."""


@redis.command("start")
def redis_start() -> None:
    """Start the embedded Redis (no-op when it runs) and print its URL."""
    settings = settings_or_exit()
    try:
        click.echo(EmbeddedRedis(settings.data_dir).ensure_running())
    except RedisUnavailableError as exc:
        raise UserError(str(exc)) from None


@redis.command("stop")
def redis_stop() -> None:
    """Stop the embedded Redis."""
    settings = settings_or_exit()
    stopped = EmbeddedRedis(settings.data_dir).stop()
    click.echo("stopped" if stopped else "not running")


# Feature commands register themselves below.
from spreports.simulator.command import simulator_command  # noqa: E402

main.add_command(simulator_command)
from spreports.reports_cli import reports  # noqa: E402

main.add_command(reports)

from spreports.notifications_cli import notifications, relay_command  # noqa: E402

main.add_command(relay_command)
main.add_command(notifications)
from spreports.demo import demo_command  # noqa: E402
from spreports.schedules_cli import schedules  # noqa: E402

main.add_command(schedules)

main.add_command(demo_command)


def run() -> None:
    """Console-script entry point."""
    main(prog_name="spreports")


if __name__ == "__main__":
    run()
