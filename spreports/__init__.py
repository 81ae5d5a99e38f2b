"""spreports: Amazon SP-API reports, scheduled and retrieved into your own storage by a Celery fleet.

``spreports.enqueue_document(...)``, ``spreports.request_report(...)`` and ``spreports.backfill_reports(...)``
queue the product's tasks from any Python program (:mod:`spreports.workers.producers`). Importing ``spreports``
loads no Celery: the producers build their app on first use.
"""

from __future__ import annotations

from importlib.metadata import version

from spreports.workers.producers import backfill_reports, enqueue_document, request_report, requested_report

__version__ = version("spreports")
__all__ = ["__version__", "backfill_reports", "enqueue_document", "request_report", "requested_report"]
