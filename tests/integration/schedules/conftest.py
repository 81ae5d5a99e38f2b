"""The schedules tests' simulator: quick outcomes, one seller (a module may override it with its own config)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from spreports.simulator import Simulator, start_simulator
from tests.sim import quick_config


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = start_simulator(quick_config())
    yield simulator
    simulator.stop()
