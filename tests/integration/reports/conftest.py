"""Fixtures of the report tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def collect_results() -> Iterator[None]:
    """Finalise the test's Celery results while Redis is up.

    Every sent task's result listens on Redis until fulfilled, and stops listening when collected: a
    result never waited for (a follower still polling when the test ends) must not be collected after
    the session's Redis has stopped, where it would retry for 20 s.
    """
    yield
    gc.collect()
