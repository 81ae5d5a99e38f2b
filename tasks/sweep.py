"""Task: the periodic safety-net pass (beat, every 15 min): :class:`spreports.reports.sweep.Sweep`.

The pass finds the work notifications or failures left undone (finished reports never stored, the failure
ledger's documents whose failure may have passed, stuck reports, dead writers' leftovers); this task sends
that work (:mod:`spreports.tasks.signatures`).
"""

from __future__ import annotations

from celery import current_app, shared_task

from spreports import names
from spreports.documents.claim import is_claimed
from spreports.reports.sweep import Sweep
from spreports.task_arguments import DocumentRequest, ReportRequest
from spreports.tasks import signatures
from spreports.tasks.context import context


@shared_task(name=names.SWEEP_FINISHED_REPORTS)
def sweep_finished_reports() -> dict[str, int | str]:
    """Enqueue the retrieval of recent finished reports not stored yet (and the rest of the pass).

    Returns per seller the count queued (or the failure), and ``recovered``: the total queued.
    """
    ctx = context()

    def being_retrieved(seller_id: str, document_id: str) -> bool:
        return is_claimed(ctx.redis, seller_id, document_id)

    return Sweep(ctx, enqueue=_enqueue, request_again=_request_again, being_retrieved=being_retrieved).run()


def _enqueue(request: DocumentRequest) -> None:
    signatures.retrieval(current_app, request).apply_async()


def _request_again(request: ReportRequest) -> None:
    signatures.report_request(current_app, request).apply_async()
