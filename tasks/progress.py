"""A running retrieval's progress as its task's state, for Flower, ``AsyncResult.info`` and the metrics.

:class:`DownloadProgress` is the pipeline's progress hook (:data:`spreports.documents.pipeline.Progress`)
for a Celery task. Every :attr:`~DownloadProgress.every_seconds` (or :attr:`~DownloadProgress.every_bytes`
received, whichever comes first; never per block) it

- stores the state ``PROGRESS`` with :meth:`~DownloadProgress.meta` in the result backend, which
  ``AsyncResult(task_id).state`` / ``.info`` return (``spreports reports download`` draws it as a bar);
- sends the task event ``task-progress`` with the same fields, which turns the task's state in Flower
  (and in any monitor of Celery's events) to ``PROGRESS`` with them;
- adds the bytes since the previous update to the fleet's byte counters (:mod:`spreports.metrics`), so
  the byte rates show while a multi-GiB document downloads, not only once it is stored.

Nothing in it is a URL or a token: ids, the report type and byte counts only. Publishing never fails
the download: a broker or backend that does not answer costs the update, not the document.

The first update comes once a download has run for ``every_seconds`` (or received ``every_bytes``): a
small document, stored within that time, costs no update at all (its task's start and end events, and
its result when kept, say all there is). The state is stored only for a task whose result is kept
(``ignore_result=False``, what the producers and the command line ask for); the event always goes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from celery import Task

from spreports.documents.pipeline import TransferProgress
from spreports.metrics import WorkerMetrics
from spreports.task_arguments import DocumentRequest

log = logging.getLogger(__name__)

PROGRESS_STATE = "PROGRESS"
PROGRESS_EVENT = "task-progress"


class DownloadProgress:
    """The progress hook of one retrieval task (see the module docstring)."""

    def __init__(
        self,
        task: Task,  # type: ignore[type-arg]
        request: DocumentRequest,
        *,
        every_seconds: float,
        every_bytes: int,
        metrics: WorkerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.task = task
        self.request = request
        self.every_seconds = every_seconds
        self.every_bytes = every_bytes
        self.metrics = metrics
        self.clock = clock
        self.updates = 0
        self._attempt = 0
        self._started = clock()
        self._published_at: float | None = None
        self._published_in = 0
        self._latest: TransferProgress | None = None
        self._counted = (0, 0)  # (bytes in, bytes out) of the current attempt already in the counters
        self._rate = 0.0

    def __call__(self, progress: TransferProgress) -> None:
        """Take one block's progress; publish when an update is due."""
        now = self.clock()
        if progress.attempt != self._attempt:
            self._new_attempt(progress.attempt, now)
        self._latest = progress
        since = now - (self._started if self._published_at is None else self._published_at)
        due = since >= self.every_seconds or progress.bytes_in - self._published_in >= self.every_bytes
        if due:
            self._publish(progress, now)

    def finish(self, bytes_in: int | None = None, bytes_out: int | None = None) -> None:
        """Count the bytes not counted yet (call once when the retrieval ends, whatever its outcome).

        ``bytes_in``/``bytes_out`` are the final attempt's totals when known (the last block's progress
        misses what the transcoder flushes at the end).
        """
        if self._latest is None:
            return
        final_in = self._latest.bytes_in if bytes_in is None else bytes_in
        final_out = self._latest.bytes_out if bytes_out is None else bytes_out
        self._count_bytes(final_in, final_out)

    def meta(self, progress: TransferProgress, now: float) -> dict[str, Any]:
        """What an update says: ids, report type, bytes, rate (bytes received per second), timing."""
        request = self.request
        expected = progress.expected_bytes_in
        return {
            "seller_id": request.seller_id,
            "report_type": request.report_type,
            "report_id": request.report_id,
            "report_document_id": request.report_document_id,
            "bytes_in": progress.bytes_in,
            "bytes_out": progress.bytes_out,
            "expected_bytes_in": expected,
            "percent": round(100.0 * progress.bytes_in / expected, 1) if expected else None,
            "rate": round(self._rate),
            "elapsed_seconds": round(now - self._started, 1),
            "attempt": progress.attempt,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def _new_attempt(self, attempt: int, now: float) -> None:
        # The bytes of a failed attempt stay counted (they were received); the new one starts at zero.
        if self._attempt:
            self.finish()
            self._started = now
        self._attempt = attempt
        self._counted = (0, 0)
        self._published_at = None
        self._published_in = 0

    def _publish(self, progress: TransferProgress, now: float) -> None:
        since = now - (self._published_at if self._published_at is not None else self._started)
        if since > 0:
            self._rate = (progress.bytes_in - self._published_in) / since
        self._published_at, self._published_in = now, progress.bytes_in
        self._count_bytes(progress.bytes_in, progress.bytes_out)
        if self.task.request.id is None:
            return  # called directly, not as a task: there is no state to update
        meta = self.meta(progress, now)
        try:
            if _keeps_result(self.task):
                self.task.update_state(state=PROGRESS_STATE, meta=meta)
            self.task.send_event(PROGRESS_EVENT, retry=False, **meta)
        except Exception as exc:  # the broker or the backend: the download goes on without this update
            log.warning(
                "document %s of seller %s: progress not published (%s)",
                self.request.report_document_id, self.request.seller_id, type(exc).__name__,
            )  # fmt: skip
            return
        self.updates += 1

    def _count_bytes(self, bytes_in: int, bytes_out: int) -> None:
        counted_in, counted_out = self._counted
        if self.metrics is not None:
            self.metrics.add_bytes(bytes_in - counted_in, bytes_out - counted_out)
        self._counted = (max(bytes_in, counted_in), max(bytes_out, counted_out))


def _keeps_result(task: Task) -> bool:  # type: ignore[type-arg]
    # The sender's choice (the message's ``ignore_result``) overrides the task's default, as in Celery's
    # tracer; a request that never said (a test's, an old producer's) falls back to the task's.
    explicit = vars(task.request).get("ignore_result")
    ignored = explicit if explicit is not None else getattr(task, "ignore_result", False)
    return not ignored
