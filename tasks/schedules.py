"""Task: keep every seller's report schedules equal to the schedules file."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from spreports import names
from spreports.errors import TransientError
from spreports.schedules import read_schedules_file, sync_schedules
from tasks.retrying import retry_later
from tasks.runtime import client_for, current_settings

log = logging.getLogger(__name__)


@shared_task(name=names.SYNC_REPORT_SCHEDULES, bind=True)
def sync_report_schedules(self: Task) -> dict[str, dict[str, int]]:  # type: ignore[type-arg]
    """Create the schedules Amazon lacks, for every configured seller; return counts per seller."""
    settings = current_settings()
    if settings.schedules_file is None:
        log.info("no SPREPORTS_SCHEDULES_FILE: nothing to schedule")
        return {}
    desired = read_schedules_file(settings.schedules_file)
    results = {}
    try:
        for seller_id in settings.sellers():
            results[seller_id] = sync_schedules(client_for(seller_id), seller_id, desired)
    except TransientError as exc:
        # Sync is idempotent: the retry skips what this run already created.
        retry_later(self, exc)
    return results
