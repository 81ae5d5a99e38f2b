"""How every task turns a transient failure into a Celery retry, and the time limits they live by.

Every time limit and every retry countdown stays below the broker's visibility timeout, or kombu's
Redis transport would deliver a task that is still running or waiting a second time.
"""

from __future__ import annotations

import random
from typing import NoReturn

from celery import Task

from spreports.errors import TransientError

SOFT_TIME_LIMIT = 40 * 60
HARD_TIME_LIMIT = 45 * 60
MAX_RETRY_COUNTDOWN = 10 * 60
VISIBILITY_TIMEOUT = 2 * 3600

MAX_RETRIES = 8
BACKOFF_BASE_SECONDS = 2.0


def retry_countdown(exc: TransientError, retries: int) -> float:
    """The wait before the next attempt: what the error asks for, else exponential backoff with full jitter."""
    if exc.retry_after is not None:
        wait = exc.retry_after + random.uniform(0, 1)
    else:
        wait = random.uniform(0, BACKOFF_BASE_SECONDS * 2**retries)
    return min(wait, MAX_RETRY_COUNTDOWN)


def retry_later(task: Task, exc: TransientError) -> NoReturn:  # type: ignore[type-arg]
    """Schedule the task again after :func:`retry_countdown`; re-raise ``exc`` when retries are spent."""
    countdown = retry_countdown(exc, task.request.retries)
    raise task.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES)
