"""A round-trip task: proves a worker consumes (used by health checks and tests)."""

from __future__ import annotations

from celery import shared_task

from spreports import names


@shared_task(name=names.PING)
def ping(value: str = "pong") -> str:
    """Return ``value``: a result read back proves the broker, a worker and the backend all work."""
    return value
