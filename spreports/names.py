"""Stable names shared by producers and workers: task names and queues.

Programs with their own Celery app can ``send_task`` these names without importing ours.
"""

from __future__ import annotations

CONTROL_QUEUE = "control"
DOCUMENTS_QUEUE = "documents"
#: Conversions of stored documents to Parquet: a queue of their own, so retrieval stays as fast and lean.
DATA_QUEUE = "data"

RETRIEVE_REPORT_DOCUMENT = "spreports.retrieve_report_document"
REQUEST_REPORT = "spreports.request_report"
SYNC_REPORT_SCHEDULES = "spreports.sync_report_schedules"
CHECK_REPORT_SCHEDULES = "spreports.check_report_schedules"
SWEEP_FINISHED_REPORTS = "spreports.sweep_finished_reports"
REQUEUE_ORPHANED_DOCUMENTS = "spreports.requeue_orphaned_documents"
PING = "spreports.ping"
FOLLOW_REPORT = "spreports.follow_report"
BACKFILL_REPORTS = "spreports.backfill_reports"
CONVERT_DOCUMENT = "spreports.convert_document"
