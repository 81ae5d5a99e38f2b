"""The ``spreports`` command: one entry point for every process and operation of the product.

Commands load on demand: ``spreports --help`` imports click and nothing else, and each command
imports only what it runs. Every command runs inside one error boundary
(:func:`~spreports.workers.cli.common.handle_errors`): expected failures (bad settings, Redis
unreachable, unwritable storage, bad input, click's usage errors) end with one ``spreports: error:``
line and exit status 2, never a traceback and never a secret.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

import click

from spreports.workers.cli.common import handle_errors, release_embedded_redis, usage_in_one_line

#: name -> (module:attribute, the one-line help shown by ``spreports --help`` without loading it).
COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("core:config", "Print the effective settings, secrets masked."),
    "check": ("core:check", "Check what a deployment needs, changing nothing; exit 0 when all is well."),
    "redis": ("core:redis", "The embedded Redis used when SPREPORTS_BROKER_URL is unset."),
    "worker": ("processes:worker", "Run a Celery worker (`celery worker` options pass through)."),
    "beat": ("processes:beat", "Run Celery beat (exactly one per deployment)."),
    "flower": ("processes:flower", "Run Flower, the live view of every task."),
    "relay": ("processes:relay", "Relay REPORT_PROCESSING_FINISHED notifications from SQS into Celery."),
    "metrics": ("metrics:metrics", "Serve the fleet's Prometheus metrics (from Redis) on one port."),
    "reports": ("reports:reports", "Reports and their documents."),
    "schedules": ("schedules:schedules", "Report schedules: the desired ones and Amazon's."),
    "notifications": ("notifications:notifications", "Amazon's notifications to your SQS queue."),
    "simulator": ("simulator:simulator", "Run an offline SP-API (needs the local extra)."),
    "data": ("data:data", "Stored documents as typed rows (Parquet) and SQL over them."),
    "demo": ("demo:demo", "Run the whole pipeline locally and retrieve reports (needs the local extra)."),
}


class LazyGroup(click.Group):
    """A group whose commands are imported when chosen, inside the error boundary."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute = COMMANDS[cmd_name][0].split(":")
        command: click.Command = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The table of commands comes from COMMANDS, so that help loads no command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, short_help) for name, (_, short_help) in COMMANDS.items()])

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        with usage_in_one_line():  # ``spreports --bogus``, ``spreports bogus``
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with usage_in_one_line(ctx), handle_errors():
                return super().invoke(ctx)
        finally:
            # On any exit (an error, a bug, Ctrl-C): a one-shot command leaves no server behind.
            release_embedded_redis(ctx.invoked_subcommand)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spreports")
def main() -> None:
    """Scheduled Amazon SP-API reports, retrieved into your storage by a Celery fleet."""


def run(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``argv`` defaults to the command line)."""
    main(args=None if argv is None else list(argv), prog_name="spreports")
