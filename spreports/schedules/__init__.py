"""Desired report schedules and requests (the schedules file), and their reconciliation with Amazon's.

The desired schedules live in a TOML file (``SPREPORTS_SCHEDULES_FILE``)::

    prune = false                          # optional: cancel Amazon's schedules of these types no entry wants

    [[schedules]]
    report_type = "GET_MERCHANT_LISTINGS_ALL_DATA"
    marketplace_ids = ["ATVPDKIKX0DER"]
    period = "P1D"
    next_report_creation_time = 2025-01-01T02:00:00-08:00   # optional, with its offset
    sellers = ["A3TH9S8BH6GOGM"]          # optional: default every configured seller
    report_options = { custom = "true" }  # optional
    prune = true                          # optional: prune this report type only

    [[requests]]                          # for report types Amazon will not schedule
    report_type = "GET_SALES_AND_TRAFFIC_REPORT"
    marketplace_ids = ["ATVPDKIKX0DER"]
    every = "P1D"
    window = "previous day"               # or "last 7 days", "last 12 hours", "P7D"; optional
    restate = "P3D"                       # optional: pull each period's window again 3 days later

- :mod:`~spreports.schedules.entries`: the file and its checks;
- :mod:`~spreports.schedules.periods`: periods, next runs, request periods and windows;
- :mod:`~spreports.schedules.reconcile`: the plan (create / replace / keep / cancel) and its calls;
- :mod:`~spreports.schedules.runs`: the fleet's lock and memory of syncs, in Redis;
- :mod:`~spreports.schedules.due_requests`: which request entries are due.
"""

from __future__ import annotations

from spreports.schedules.entries import (
    DesiredSchedule,
    RequestEntry,
    SchedulesFile,
    load_schedules_file,
    read_schedules_file,
    unschedulable_advice,
)
from spreports.schedules.reconcile import (
    MAX_TYPES_PER_CALL,
    Plan,
    ScheduleClient,
    Step,
    apply_plan,
    plan_schedules,
    sync_schedules,
)

__all__ = [
    "MAX_TYPES_PER_CALL",
    "DesiredSchedule",
    "Plan",
    "RequestEntry",
    "ScheduleClient",
    "SchedulesFile",
    "Step",
    "apply_plan",
    "load_schedules_file",
    "plan_schedules",
    "read_schedules_file",
    "sync_schedules",
    "unschedulable_advice",
]
