"""The periodic entries Celery beat issues.

A plain module of task *names* (no task imports), so that the app factory can load it without
import cycles. Run exactly one beat process per deployment.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from spreports.names import CONTROL_QUEUE, SWEEP_FINISHED_REPORTS, SYNC_REPORT_SCHEDULES

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
}
