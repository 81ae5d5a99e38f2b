"""``spreports schedules ...``: see, plan and reconcile the report schedules from the shell."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from spreports.workers.cli.common import UserError, check_redis, command_settings

if TYPE_CHECKING:
    import redis

    from spreports.schedules import Plan, SchedulesFile, Step
    from spreports.settings import Settings
    from spreports.spapi import SpapiClient


@click.group(short_help="Report schedules: the desired ones and Amazon's.")
def schedules() -> None:
    """Report schedules: the desired ones (SPREPORTS_SCHEDULES_FILE) and Amazon's."""


def _desired(settings: Settings) -> SchedulesFile:
    from spreports.schedules import load_schedules_file

    if settings.schedules_file is None:
        raise UserError("SPREPORTS_SCHEDULES_FILE is not set")
    return load_schedules_file(settings.schedules_file)


def _require_sellers(settings: Settings) -> None:
    # Without a seller there is nothing to compare: say so, rather than print nothing and exit 0.
    if not settings.sellers():
        raise UserError(
            "no seller credentials: set SPREPORTS_SELLER_ID and SPREPORTS_LWA__REFRESH_TOKEN, or SPREPORTS_SELLERS_FILE"
        )


def _redis(settings: Settings) -> redis.Redis:
    from spreports.connection import connect

    return connect(check_redis(settings))


def _clients(settings: Settings, store: redis.Redis, seller: str | None = None) -> dict[str, SpapiClient]:
    from spreports.spapi import SpapiClient

    sellers = list(settings.sellers()) if seller is None else [seller]
    return {seller_id: SpapiClient.for_seller(settings, seller_id, redis=store) for seller_id in sellers}


def _when(step: Step) -> str:
    return "-" if step.next_run is None else f"{step.next_run:%Y-%m-%dT%H:%M:%S%z}"


def _describe(step: Step) -> str:
    entry = step.desired.label if step.desired is not None else "not in the file"
    notes = {
        "create": f"{entry}: missing at Amazon",
        "replace": f"{entry}: Amazon's differs (period, options or run time)",
        "keep": entry,
        "cancel": "not in the file: prune cancels it",
        "unmanaged": "not in the file: prune = true would cancel it",
    }
    return notes[step.action]


def _print_plan(plan: Plan) -> None:
    click.echo(plan.seller_id)
    for step in plan.steps:
        click.echo(
            f"  {step.action:<9} {step.report_type}\t{step.period}\t{','.join(step.marketplace_ids)}\t"
            f"next {_when(step)}\t{step.schedule_id or '-'}\t{_describe(step)}"
        )


@schedules.command("sync")
@click.option("--dry-run", is_flag=True, help="Print the plan (create / replace / keep / cancel) and change nothing.")
def sync(dry_run: bool) -> None:
    """Make Amazon's schedules equal to the file's now, in this process (beat does it when due)."""
    from datetime import UTC, datetime, timedelta

    from spreports.schedules import apply_plan, plan_schedules
    from spreports.schedules.runs import SyncState

    settings = command_settings()
    desired = _desired(settings)
    _require_sellers(settings)
    store = _redis(settings)
    clients = _clients(settings, store)
    if dry_run:
        for seller_id, client in clients.items():
            _print_plan(plan_schedules(client, seller_id, desired))
        return
    state = SyncState(store)
    # The same lock as beat's sync: a person and beat never make the same calls twice.
    with state.lock(timedelta(minutes=10)) as lock:
        if lock is None:
            raise UserError("another schedule sync is running (beat's or another shell's): try again in a moment")
        for seller_id, client in clients.items():
            counts = apply_plan(client, plan_schedules(client, seller_id, desired))
            line = f"{seller_id}: {counts['created']} created, {counts['kept']} already in place"
            click.echo(line + (f", {counts['cancelled']} cancelled" if counts.get("cancelled") else ""))
            for message in counts.get("refused", []):
                click.echo(f"{seller_id}: refused: {message}", err=True)
            lock.renew()
        state.record_applied(desired.digest, datetime.now(UTC))


@schedules.command("list")
def list_schedules() -> None:
    """Amazon's schedules of the file's report types beside the file's entries, with their next run."""
    from spreports.schedules import plan_schedules

    settings = command_settings()
    desired = _desired(settings)
    _require_sellers(settings)
    for seller_id, client in _clients(settings, _redis(settings)).items():
        for step in plan_schedules(client, seller_id, desired).steps:
            click.echo(
                f"{seller_id}\t{step.report_type}\t{step.period}\t{','.join(step.marketplace_ids)}\t"
                f"next {_when(step)}\t{step.schedule_id or '-'}\t{_describe(step)}"
            )


@schedules.command("cancel")
@click.argument("schedule_id")
@click.option("--seller", "seller_id", help="The seller (default: SPREPORTS_SELLER_ID, or the only one configured).")
def cancel(schedule_id: str, seller_id: str | None) -> None:
    """Cancel one of Amazon's report schedules by its id."""
    settings = command_settings()
    sellers = list(settings.sellers())
    seller = seller_id or settings.seller_id or (sellers[0] if len(sellers) == 1 else None)
    if not seller:
        raise UserError("give --seller: several sellers are configured")
    client = _clients(settings, _redis(settings), seller)[seller]
    schedule = client.get_report_schedule(schedule_id)
    client.cancel_report_schedule(schedule_id)
    click.echo(f"cancelled schedule {schedule_id} of seller {seller}: {schedule.report_type} every {schedule.period}")
    if settings.schedules_file is not None:
        wanted = sorted(set(schedule.marketplace_ids or []))
        for entry in _desired(settings).schedules:
            if entry.applies_to(seller) and entry.key == (schedule.report_type, tuple(wanted)):
                click.echo(f"note: {entry.label} still wants it: the next sync creates it again", err=True)
