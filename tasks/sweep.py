"""Task: the periodic safety-net pass (beat, every 15 min): :class:`spreports.sweep.Sweep`.

The pass finds the work notifications or failures left undone (finished reports never stored, the failure
ledger's documents whose failure may have passed, stuck reports, dead writers' leftovers); this task sends
that work (:mod:`spreports.tasks.signatures`).
"""

from __future__ import annotations

from celery import current_app, shared_task

from spreports import names
from spreports.contracts import DocumentRequest, ReportRequest
from spreports.sweep import Sweep
from spreports.tasks import signatures
from spreports.tasks.context import context


@shared_task(name=names.SWEEP_FINISHED_REPORTS)
def sweep_finished_reports() -> dict[str, int | str]:
    """Enqueue the retrieval of recent finished reports not stored yet (and the rest of the pass).

    Returns per seller the count queued (or the failure), and ``recovered``: the total queued.
    """
    return Sweep(context(), enqueue=_enqueue, request_again=_request_again).run()


def _enqueue(request: DocumentRequest) -> None:
    signatures.retrieval(current_app, request).apply_async()


def _request_again(request: ReportRequest) -> None:
    signatures.report_request(current_app, request).apply_async()
