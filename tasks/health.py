"""A round-trip task: proves a worker consumes (used by health checks and tests)."""

from __future__ import annotations

import time

from celery import shared_task

from spreports import names


@shared_task(name=names.PING)
def ping(value: str = "pong", delay: float = 0.0) -> str:
    """Return ``value`` after ``delay`` seconds: a result read back proves broker, worker and backend work."""
    time.sleep(min(delay, 10.0))
    return value
