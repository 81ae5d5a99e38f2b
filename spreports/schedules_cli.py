"""``spreports schedules ...``: see and reconcile the report schedules from the shell."""

from __future__ import annotations

import click

from spreports.errors import SpreportsError
from spreports.schedules import DesiredSchedule, read_schedules_file
from spreports.settings import Settings, SettingsError


@click.group("schedules")
def schedules() -> None:
    """Report schedules: the desired ones (SPREPORTS_SCHEDULES_FILE) and Amazon's."""


def _desired(settings: Settings) -> list[DesiredSchedule]:
    from spreports.cli import UserError

    if settings.schedules_file is None:
        raise UserError("SPREPORTS_SCHEDULES_FILE is not set")
    try:
        return read_schedules_file(settings.schedules_file)
    except SettingsError as exc:
        raise UserError(str(exc)) from None


@schedules.command("sync")
def sync() -> None:
    """Create the schedules Amazon lacks, now, in this process (beat does this every hour)."""
    from spreports.cli import UserError, settings_or_exit
    from spreports.redis_server import broker_url, connect
    from spreports.schedules import sync_schedules
    from spreports.spapi import SpapiClient

    settings = settings_or_exit()
    desired = _desired(settings)
    try:
        redis = connect(broker_url(settings))
        for seller_id in settings.sellers():
            counts = sync_schedules(SpapiClient.for_seller(settings, seller_id, redis=redis), seller_id, desired)
            click.echo(f"{seller_id}: {counts['created']} created, {counts['kept']} already in place")
    except SpreportsError as exc:
        raise UserError(str(exc)) from None


@schedules.command("list")
def list_schedules() -> None:
    """List Amazon's schedules of the report types named in the schedules file, per seller."""
    from spreports.cli import UserError, settings_or_exit
    from spreports.redis_server import broker_url, connect
    from spreports.spapi import SpapiClient

    settings = settings_or_exit()
    types = sorted({schedule.report_type for schedule in _desired(settings)})
    try:
        redis = connect(broker_url(settings))
        for seller_id in settings.sellers():
            client = SpapiClient.for_seller(settings, seller_id, redis=redis)
            for start in range(0, len(types), 10):
                for schedule in client.get_report_schedules(types[start : start + 10]):
                    click.echo(
                        f"{seller_id}\t{schedule.report_type}\t{schedule.period}\t"
                        f"{','.join(schedule.marketplace_ids or [])}\tnext {schedule.next_report_creation_time}\t"
                        f"{schedule.report_schedule_id}"
                    )
    except SpreportsError as exc:
        raise UserError(str(exc)) from None
