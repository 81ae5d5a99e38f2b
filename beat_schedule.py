"""The periodic entries Celery beat issues.

A plain module of task *names* (no task imports), so that the app factory can load it without
import cycles. Run exactly one beat process per deployment.
"""

from __future__ import annotations

from typing import Any

from celery.schedules import crontab

from spreports.names import CHECK_REPORT_SCHEDULES, CONTROL_QUEUE, REQUEUE_ORPHANED_DOCUMENTS, SWEEP_FINISHED_REPORTS

#: How often beat looks whether the schedules need a sync or a request entry is due (one Redis read).
CHECK_INTERVAL_SECONDS = 30.0

BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    # Keep Amazon's report schedules equal to the desired ones (SPREPORTS_SCHEDULES_FILE): a cheap check
    # that queues the sync only when it is due (the file changed, or SPREPORTS_SCHEDULES_SYNC_INTERVAL
    # passed) and the [[requests]] whose period began. Beat also sends one check as it starts.
    "sync-report-schedules": {
        "task": CHECK_REPORT_SCHEDULES,
        "schedule": CHECK_INTERVAL_SECONDS,
        "options": {"queue": CONTROL_QUEUE, "expires": CHECK_INTERVAL_SECONDS - 5},
    },
    # Safety net: finished reports whose notification never arrived are retrieved anyway.
    "sweep-finished-reports": {
        "task": SWEEP_FINISHED_REPORTS,
        "schedule": crontab(minute="*/15"),
        "options": {"queue": CONTROL_QUEUE, "expires": 14 * 60},
    },
    # A worker killed mid-download leaves its document listed with a lapsed claim, a message the broker lost
    # leaves it listed past its due moment: queued again soon, not after the broker's visibility timeout.
    # With a 30 s claim, a dead worker's document is back within a minute. Its runs are beat's heartbeat.
    "requeue-orphaned-documents": {
        "task": REQUEUE_ORPHANED_DOCUMENTS,
        "schedule": 15.0,
        "options": {"queue": CONTROL_QUEUE, "expires": 14},
    },
}

# Python started in the checkout has the checkout on sys.path: this module is `spreports.beat_schedule` (pyproject.toml
# maps it into the package), never a second module named `beat_schedule`.
if __name__ != "spreports.beat_schedule":
    raise ImportError("beat_schedule is the module spreports.beat_schedule: import it by that name")
