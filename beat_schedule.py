"""The periodic entries Celery beat issues.

A plain module of task *names* (no task imports), so that the app factory can load it without
import cycles. Run exactly one beat process per deployment.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from spreports.names import CONTROL_QUEUE, REQUEUE_ORPHANED_DOCUMENTS, SWEEP_FINISHED_REPORTS, SYNC_REPORT_SCHEDULES

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Keep Amazon's report schedules equal to the desired ones (SPREPORTS_SCHEDULES_FILE).
    "sync-report-schedules": {
        "task": SYNC_REPORT_SCHEDULES,
        "schedule": crontab(minute="7"),
        "options": {"queue": CONTROL_QUEUE, "expires": 50 * 60},
    },
    # Safety net: finished reports whose notification never arrived are retrieved anyway.
    "sweep-finished-reports": {
        "task": SWEEP_FINISHED_REPORTS,
        "schedule": crontab(minute="*/15"),
        "options": {"queue": CONTROL_QUEUE, "expires": 14 * 60},
    },
    # A worker killed mid-download leaves its document listed with a lapsed claim: queued again at once,
    # instead of after the broker's visibility timeout. With a 30 s claim, back within a minute.
    "requeue-orphaned-documents": {
        "task": REQUEUE_ORPHANED_DOCUMENTS,
        "schedule": 15.0,
        "options": {"queue": CONTROL_QUEUE, "expires": 14},
    },
}
