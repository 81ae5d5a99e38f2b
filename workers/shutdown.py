"""A prefork worker's stop signals handled between two turns of its event loop, never inside one.

Celery runs a cold shutdown (the soft wait, cancelling the tasks, stopping the pool) inside the signal
handler itself. When SIGTERM lands while the event loop is half-way through registering the reader of a
task's result (the task had just ended), the pool's stop then waits for that result pipe forever: the
worker logged "Initiating Soft Shutdown" and hung until SIGKILL (seen in about half of the runs of a
test that stops its worker right after a task; the stack is in ``prefork.py`` ``on_stop`` ->
``_flush_outqueue``). Deferring the handler to the loop's own timer (a few tenths of a second later)
runs it in the state Celery expects. Only a note is taken in signal context: taking the event loop's
locks there could deadlock the thread the signal interrupted.

When the loop is not turning (the consumer is reconnecting to a lost broker, or the worker is already
shutting down), nothing is half-way through it and a deferred signal would wait for nothing: the
handler then runs at once, as Celery would run it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

#: How often the event loop looks for a deferred stop signal (the delay it adds to a shutdown).
CHECK_SECONDS = 0.2
#: A loop that has not turned for this long is not turning: a signal is handled at once.
STALLED_SECONDS = 1.0
DEFERRED_SIGNALS = (signal.SIGTERM, signal.SIGQUIT)

_stop_requested = threading.Event()


def stop_requested() -> bool:
    """Whether this process was asked to stop by SIGTERM or SIGQUIT (its exit is then a clean one)."""
    return _stop_requested.is_set()


class _Deferral:
    """The process's deferred stop signals: those noted, the loop's last turn, the loop's timer."""

    def __init__(self) -> None:
        self.pending: dict[int, Callable[..., Any]] = {}
        self.last_turn = time.monotonic()
        self.timer: Any = None
        self.hub: Any = None

    def run_pending(self) -> None:
        """On the event loop: run the handlers of the signals noted since the last turn."""
        self.last_turn = time.monotonic()
        for signum in list(self.pending):
            self.pending.pop(signum)(signum, None)

    def note(self, signum: int, frame: FrameType | None, handler: Callable[..., Any]) -> None:
        """In signal context: note the signal for the loop, or handle it now when no loop is turning."""
        _stop_requested.set()
        if self.hub is None or time.monotonic() - self.last_turn > STALLED_SECONDS:
            handler(signum, frame)
        else:
            self.pending.setdefault(signum, handler)  # a dict store is atomic: safe in signal context


_deferral = _Deferral()


def defer_stop_signals(hub: Any | None) -> None:
    """Route SIGTERM and SIGQUIT through ``hub`` (a kombu event loop; None: handled at once, only noted).

    Called again when the consumer restarts (after a lost broker connection, whose clean-up may cancel
    the timers of the failed connection): the handlers stay, the loop's timer is set anew. A no-op off
    the main thread (signals are set there only).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in DEFERRED_SIGNALS:
        handler = signal.getsignal(signum)
        if not callable(handler) or getattr(handler, "deferred_by_spreports", False):
            continue

        def deferred(number: int, frame: FrameType | None, handler: Callable[..., Any] = handler) -> None:
            _deferral.note(number, frame, handler)

        deferred.deferred_by_spreports = True  # type: ignore[attr-defined]
        signal.signal(signum, deferred)
    if _deferral.timer is not None:
        with contextlib.suppress(Exception):  # already cancelled with the failed connection's timers
            _deferral.timer.cancel()
    _deferral.hub, _deferral.timer, _deferral.last_turn = hub, None, time.monotonic()
    if hub is not None:
        _deferral.timer = hub.call_repeatedly(CHECK_SECONDS, _deferral.run_pending)
