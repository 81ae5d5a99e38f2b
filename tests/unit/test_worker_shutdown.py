"""A stop signal reaches Celery's handler from the worker's event loop, not from inside whatever it interrupted."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from spreports.workers import shutdown
from spreports.workers.shutdown import CHECK_SECONDS, STALLED_SECONDS, defer_stop_signals, stop_requested


class LoopTimer:
    """The part of kombu's hub the deferral uses: a callback run repeatedly by the loop."""

    def __init__(self) -> None:
        self.repeated: list[tuple[float, Callable[[], Any]]] = []

    def call_repeatedly(self, delay: float, callback: Callable[[], Any]) -> TimerEntry:
        entry = (delay, callback)
        self.repeated.append(entry)
        return TimerEntry(lambda: self.repeated.remove(entry))

    def turn(self) -> None:
        """One turn of the loop: its timers fire."""
        for _, callback in list(self.repeated):
            callback()


class TimerEntry:
    def __init__(self, cancel: Callable[[], None]) -> None:
        self.cancel = cancel


@pytest.fixture
def celery_handlers() -> Iterator[list[int]]:
    """Stand-ins for Celery's SIGTERM and SIGQUIT handlers, recording the signals they ran for."""
    received: list[int] = []
    shutdown._stop_requested.clear()
    shutdown._deferral = shutdown._Deferral()
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGQUIT)}
    for signum in saved:
        signal.signal(signum, lambda number, frame: received.append(number))
    try:
        yield received
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        shutdown._stop_requested.clear()


def test_the_handler_runs_on_the_next_turn_of_the_loop(celery_handlers: list[int]) -> None:
    hub = LoopTimer()
    defer_stop_signals(hub)
    assert [delay for delay, _ in hub.repeated] == [CHECK_SECONDS]
    assert not stop_requested()
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)  # sent twice (a supervisor and a process-group forward)
    assert celery_handlers == [] and stop_requested()  # in signal context only a note is taken
    hub.turn()
    assert celery_handlers == [signal.SIGTERM]  # once
    hub.turn()
    assert celery_handlers == [signal.SIGTERM]  # run once
    os.kill(os.getpid(), signal.SIGQUIT)
    hub.turn()
    assert celery_handlers == [signal.SIGTERM, signal.SIGQUIT]


def test_a_restarted_consumer_keeps_the_handlers_and_sets_the_timer_anew(celery_handlers: list[int]) -> None:
    hub = LoopTimer()
    defer_stop_signals(hub)
    hub.repeated.clear()  # the failed connection's clean-up cancelled the timers registered since it started
    defer_stop_signals(hub)  # the consumer restarted: worker_ready again
    assert len(hub.repeated) == 1
    defer_stop_signals(hub)
    assert len(hub.repeated) == 1  # the previous timer cancelled, not doubled
    os.kill(os.getpid(), signal.SIGTERM)
    assert celery_handlers == []  # still deferred: the handlers were not wrapped twice
    hub.turn()
    assert celery_handlers == [signal.SIGTERM]


def test_a_loop_that_is_not_turning_gets_the_signal_handled_at_once(
    celery_handlers: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The consumer is reconnecting to a lost broker: nothing runs the loop's timers, nothing is mid-turn.
    clock = [1000.0]
    monkeypatch.setattr(shutdown.time, "monotonic", lambda: clock[0])
    hub = LoopTimer()
    defer_stop_signals(hub)
    clock[0] += STALLED_SECONDS + 0.1
    os.kill(os.getpid(), signal.SIGTERM)
    assert celery_handlers == [signal.SIGTERM]
    hub.turn()
    assert celery_handlers == [signal.SIGTERM]


def test_a_pool_without_an_event_loop_handles_the_signal_at_once_and_notes_it(celery_handlers: list[int]) -> None:
    defer_stop_signals(None)  # --pool threads or solo: no hub
    os.kill(os.getpid(), signal.SIGQUIT)
    assert celery_handlers == [signal.SIGQUIT] and stop_requested()
