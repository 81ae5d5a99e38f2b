"""Task: keep every seller's report schedules equal to the schedules file."""

from __future__ import annotations

import logging

from celery import shared_task

from spreports import names
from spreports.errors import SpreportsError
from spreports.schedules import read_schedules_file, sync_schedules
from spreports.tasks.context import context

log = logging.getLogger(__name__)


@shared_task(name=names.SYNC_REPORT_SCHEDULES)
def sync_report_schedules() -> dict[str, dict[str, int] | str]:
    """Create the schedules Amazon lacks, for every configured seller; return per seller counts or the failure."""
    ctx = context()
    settings = ctx.settings
    if settings.schedules_file is None:
        log.info("no SPREPORTS_SCHEDULES_FILE: nothing to schedule")
        return {}
    desired = read_schedules_file(settings.schedules_file)
    results: dict[str, dict[str, int] | str] = {}
    for seller_id in settings.sellers():
        try:
            results[seller_id] = sync_schedules(ctx.client(seller_id), seller_id, desired)
        except SpreportsError as exc:
            # One seller's failure must not stop the others; sync is idempotent and the next run retries.
            log.warning("schedule sync for seller %s failed: %s", seller_id, exc)
            results[seller_id] = f"failed: {type(exc).__name__}: {exc}"
    return results
