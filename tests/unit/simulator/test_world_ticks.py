"""Concurrent ticks (the ticker thread and every API call tick the world) finish each report once."""

from __future__ import annotations

import threading
import time

from spreports.simulator import Outcomes
from spreports.simulator.clock import SimClock
from spreports.simulator.config import Faults, SimulatorConfig
from spreports.simulator.world import Report, World


def test_two_ticks_at_once_finish_each_report_once() -> None:
    clock = SimClock()
    config = SimulatorConfig(outcomes=Outcomes(queue_seconds=1, processing_seconds=1), seed=3)
    world = World(config, clock, Faults())
    finished: list[str] = []
    first_done = threading.Event()

    def on_finished(report: Report) -> None:
        finished.append(report.report_id)
        if not first_done.is_set():
            first_done.set()
            time.sleep(0.3)  # the first tick lingers after its first report: the second tick runs meanwhile

    world.on_finished = on_finished
    for _ in range(3):
        world.create_report(config.sellers[0].seller_id, "GET_MERCHANT_LISTINGS_ALL_DATA", ("ATVPDKIKX0DER",))
    clock.advance(10)
    first = threading.Thread(target=world.tick)
    first.start()
    assert first_done.wait(5)
    world.tick()
    first.join()
    assert sorted(finished) == sorted(set(finished)) and len(finished) == 3
    assert len(world.documents) == 3
