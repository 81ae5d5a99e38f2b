"""A prefork worker's stop signals handled between two turns of its event loop, never inside one.

Celery runs a cold shutdown (the soft wait, cancelling the tasks, stopping the pool) inside the signal
handler itself. When SIGTERM lands while the event loop is half-way through registering the reader of a
task's result (the task had just ended), the pool's stop then waits for that result pipe forever: the
worker logged "Initiating Soft Shutdown" and hung until SIGKILL (seen in about half of the runs of a
test that stops its worker right after a task; the stack is in ``prefork.py`` ``on_stop`` ->
``_flush_outqueue``). Deferring the handler to the loop's own timer (a few tenths of a second later)
runs it in the state Celery expects. Only a flag is set in signal context: taking the event loop's
locks there could deadlock the thread the signal interrupted.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

#: How often the event loop looks for a deferred stop signal (the delay it adds to a shutdown).
CHECK_SECONDS = 0.2
DEFERRED_SIGNALS = (signal.SIGTERM, signal.SIGQUIT)


def defer_stop_signals(hub: Any) -> None:
    """Route SIGTERM and SIGQUIT through ``hub`` (a kombu event loop); idempotent across consumer restarts."""
    pending: list[tuple[Callable[..., Any], int]] = []

    def run_pending() -> None:
        while pending:
            handler, signum = pending.pop(0)
            handler(signum, None)

    deferred_any = False
    for signum in DEFERRED_SIGNALS:
        handler = signal.getsignal(signum)
        if not callable(handler) or getattr(handler, "deferred_by_spreports", False):
            continue

        def deferred(number: int, frame: FrameType | None, handler: Callable[..., Any] = handler) -> None:
            pending.append((handler, number))  # list.append is atomic: safe in signal context

        deferred.deferred_by_spreports = True  # type: ignore[attr-defined]
        signal.signal(signum, deferred)
        deferred_any = True
    if deferred_any:
        hub.call_repeatedly(CHECK_SECONDS, run_pending)
