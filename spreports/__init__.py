"""spreports: Amazon SP-API reports, scheduled and retrieved into your own storage by a Celery fleet.

``spreports.enqueue_document(...)``, ``spreports.request_report(...)`` and
``spreports.backfill_reports(...)`` queue the product's tasks from any Python program (see
:mod:`spreports.workers.producers`); importing ``spreports`` loads neither Celery nor anything else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spreports.workers.producers import backfill_reports, enqueue_document, request_report, requested_report

__version__ = "0.1.0"
__all__ = ["backfill_reports", "enqueue_document", "request_report", "requested_report"]


def __getattr__(name: str) -> Any:
    # The producers live with the processes (they need Celery); they load on first use.
    if name in __all__:
        from spreports.workers import producers

        return getattr(producers, name)
    raise AttributeError(f"module 'spreports' has no attribute {name!r}")
