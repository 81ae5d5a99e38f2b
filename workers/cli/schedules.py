"""``spreports schedules ...``: see and reconcile the report schedules from the shell."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from spreports.schedules import DesiredSchedule, read_schedules_file
from spreports.settings import Settings
from spreports.workers.cli.common import UserError, check_redis, command_settings

if TYPE_CHECKING:
    from spreports.spapi import SpapiClient


@click.group(short_help="Report schedules: the desired ones and Amazon's.")
def schedules() -> None:
    """Report schedules: the desired ones (SPREPORTS_SCHEDULES_FILE) and Amazon's."""


def _desired(settings: Settings) -> list[DesiredSchedule]:
    if settings.schedules_file is None:
        raise UserError("SPREPORTS_SCHEDULES_FILE is not set")
    return read_schedules_file(settings.schedules_file)


def _clients(settings: Settings) -> dict[str, SpapiClient]:
    from spreports.connection import connect
    from spreports.spapi import SpapiClient

    store = connect(check_redis(settings))
    return {seller_id: SpapiClient.for_seller(settings, seller_id, redis=store) for seller_id in settings.sellers()}


@schedules.command("sync")
def sync() -> None:
    """Create the schedules Amazon lacks, now, in this process (beat does this every hour)."""
    from spreports.schedules import sync_schedules

    settings = command_settings()
    desired = _desired(settings)
    for seller_id, client in _clients(settings).items():
        counts = sync_schedules(client, seller_id, desired)
        click.echo(f"{seller_id}: {counts['created']} created, {counts['kept']} already in place")


@schedules.command("list")
def list_schedules() -> None:
    """List Amazon's schedules of the report types named in the schedules file, per seller."""
    settings = command_settings()
    types = sorted({schedule.report_type for schedule in _desired(settings)})
    for seller_id, client in _clients(settings).items():
        for start in range(0, len(types), 10):
            for schedule in client.get_report_schedules(types[start : start + 10]):
                click.echo(
                    f"{seller_id}\t{schedule.report_type}\t{schedule.period}\t"
                    f"{','.join(schedule.marketplace_ids or [])}\tnext {schedule.next_report_creation_time}\t"
                    f"{schedule.report_schedule_id}"
                )
