"""``spreports worker``, ``beat``, ``flower`` and ``relay``: the long-running processes of the fleet."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from spreports.workers.cli.common import check_redis, check_storage, command_settings

CELERY_PASSTHROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _run_celery(argv: Sequence[str], *, storage: bool = False) -> None:
    settings = command_settings()
    check_redis(settings)
    if storage:
        check_storage(settings)
    from spreports.workers.app import app

    args = list(argv)
    if argv[0] in ("worker", "beat") and not any(a.startswith(("-l", "--loglevel")) for a in args[1:]):
        args.append(f"--loglevel={settings.log_level}")
    app.start(args)


@click.command(context_settings=CELERY_PASSTHROUGH)
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a Celery worker (any `celery worker` option passes through, e.g. -Q documents -c 4)."""
    _run_celery(["worker", *ctx.args], storage=True)


@click.command(context_settings=CELERY_PASSTHROUGH)
@click.pass_context
def beat(ctx: click.Context) -> None:
    """Run Celery beat (exactly one per deployment); `celery beat` options pass through."""
    _run_celery(["beat", *ctx.args])


@click.command(context_settings=CELERY_PASSTHROUGH)
@click.pass_context
def flower(ctx: click.Context) -> None:
    """Run Flower, the live view of every task (`celery flower` options pass through)."""
    _run_celery(["flower", *ctx.args])


@click.command()
@click.option("--check", is_flag=True, help="Exit 0 if a relay on this host has a fresh heartbeat, else 1.")
def relay(check: bool) -> None:
    """Relay REPORT_PROCESSING_FINISHED notifications from SQS into Celery (SIGTERM: finish the batch, exit)."""
    from spreports.workers.relay.process import main as relay_main

    sys.exit(relay_main(command_settings(), check_only=check))
