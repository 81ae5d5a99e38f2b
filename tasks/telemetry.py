"""The fleet's metrics from inside a worker process: the recorder on the process's Redis, the 429 watch.

See :mod:`spreports.metrics` for what is counted and where it goes.
"""

from __future__ import annotations

from spreports.metrics import WorkerMetrics, watch_throttling
from spreports.spapi.transport import default_session
from spreports.tasks.context import context


def fleet_metrics() -> WorkerMetrics:
    """The recorder of this process (on its context's Redis pool)."""
    return WorkerMetrics(context().redis)


def watch_spapi_throttling() -> None:
    """Count every 429 of this process's SP-API session (call when a worker process starts)."""
    watch_throttling(default_session(), lambda: fleet_metrics().count("spapi_throttled"))
