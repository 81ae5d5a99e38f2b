"""``spreports worker``, ``beat``, ``flower`` and ``relay``: the long-running processes of the fleet."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from spreports.workers.cli.common import check_redis, check_storage, check_writable_file, command_settings

if TYPE_CHECKING:
    from celery import Celery

CELERY_PASSTHROUGH = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}


def _run_celery(
    argv: Sequence[str], *, storage: bool = False, writes: Path | None = None, prog_name: str | None = None
) -> None:
    settings = command_settings()
    check_redis(settings)
    if storage:
        check_storage(settings)
    if writes is not None:
        check_writable_file(writes, "the beat schedule")
    from spreports.workers.app import app

    args = list(argv)
    if argv[0] in ("worker", "beat") and not any(a.startswith(("-l", "--loglevel")) for a in args[1:]):
        args.append(f"--loglevel={settings.log_level}")
    if argv[0] == "worker":
        _run_worker(app, args[1:], prog_name or "spreports worker")
    else:
        app.start(args)


def _run_worker(app: Celery, args: list[str], prog_name: str) -> None:
    """``celery worker`` with ``args``, without loading Celery's umbrella command.

    ``app.start`` goes through ``celery.bin.celery``, which imports every Celery subcommand and every
    installed plugin (Flower with tornado and prometheus_client, click-repl with prompt_toolkit): about
    10 MiB that the worker never uses, and that every prefork child inherits in its peak RSS. The worker
    command alone, given the context the umbrella command would build, starts the same worker.
    """
    from celery.bin.base import CLIContext
    from celery.bin.worker import worker as celery_worker

    from spreports.workers.shutdown import stop_requested

    # The umbrella command's -C/--no-color, which only NO_COLOR can reach here (read as click reads a
    # boolean flag's environment variable: empty, 0, false, no and off leave colour on).
    no_color = os.environ.get("NO_COLOR", "").lower() not in ("", "0", "false", "no", "off")
    context = CLIContext(app=app, no_color=no_color, workdir=None, quiet=False)
    exit_code = celery_worker.main(args=args, prog_name=prog_name, obj=context, standalone_mode=False)
    # A worker asked to stop ends with Celery's cold-shutdown code (SIGTERM is remapped to SIGQUIT): a
    # clean stop for a supervisor. Any other non-zero code (an unrecoverable error) is passed on.
    if isinstance(exit_code, int) and exit_code and not stop_requested():
        sys.exit(exit_code)


@click.command(
    context_settings=CELERY_PASSTHROUGH, short_help="Run a Celery worker (`celery worker` options pass through)."
)
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a Celery worker (any `celery worker` option passes through, e.g. -Q documents -c 4).

    SIGTERM stops it softly: running tasks get a few seconds to finish, the rest are handed back.
    """
    # Celery's SIGTERM waits for running tasks however long they take (a stalled download: until its
    # read timeout, then its retries). Mapped to SIGQUIT, it waits worker_soft_shutdown_timeout, then
    # ends the pool processes, whose abandoned downloads clean up and whose messages go back to the
    # queue. Read by billiard when imported: set before anything loads Celery.
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    _run_celery(["worker", *ctx.args], storage=True, prog_name=ctx.command_path)


@click.command(context_settings=CELERY_PASSTHROUGH, short_help="Run Celery beat (exactly one per deployment).")
@click.pass_context
def beat(ctx: click.Context) -> None:
    """Run Celery beat (exactly one per deployment); `celery beat` options pass through."""
    _run_celery(["beat", *ctx.args], writes=_beat_schedule_file(ctx.args))


def _beat_schedule_file(args: Sequence[str]) -> Path:
    """The schedule file beat will write: ``-s``/``--schedule`` of the arguments, else Celery's default."""
    path = "celerybeat-schedule"
    for index, arg in enumerate(args):
        if arg in ("-s", "--schedule") and index + 1 < len(args):
            path = args[index + 1]
        elif arg.startswith("--schedule="):
            path = arg.partition("=")[2]
        elif arg.startswith("-s") and len(arg) > 2:
            path = arg[2:]
    return Path(path)


@click.command(context_settings=CELERY_PASSTHROUGH, short_help="Run Flower, the live view of every task.")
@click.pass_context
def flower(ctx: click.Context) -> None:
    """Run Flower, the live view of every task (`celery flower` options pass through).

    It listens on 127.0.0.1 unless given --address; any other address needs a login
    (FLOWER_BASIC_AUTH=user:password or --basic-auth), which /api/* and /metrics ask for too.
    """
    from spreports.workers.flower_security import flower_arguments, leave_logging_to_the_product, protect_metrics

    arguments = leave_logging_to_the_product(flower_arguments(ctx.args, os.environ), os.environ)
    protect_metrics()
    _run_celery(["flower", *arguments])


@click.command(short_help="Relay REPORT_PROCESSING_FINISHED notifications from SQS into Celery.")
@click.option(
    "--check",
    is_flag=True,
    help="Exit 0 if a relay on this host has a fresh heartbeat, 1 if none (2 if Redis does not answer).",
)
def relay(check: bool) -> None:
    """Relay REPORT_PROCESSING_FINISHED notifications from SQS into Celery (SIGTERM: finish the batch, exit)."""
    from spreports.connection import ping
    from spreports.workers.relay.process import main as relay_main

    settings = command_settings()
    if not check:
        check_redis(settings)
    elif settings.state_redis_url:
        # A Redis that does not answer is an error (exit 2), as for every command; 1 means no fresh heartbeat.
        # (With no Redis configured the check never starts the embedded Redis: it is not running, exit 1.)
        ping(settings.state_redis_url)
    sys.exit(relay_main(settings, check_only=check))
