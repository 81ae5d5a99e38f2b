"""How tasks wait and retry, and the time limits they live by.

Two kinds of coming back later, on two budgets. A *failure* (a transient error: 5xx, a cut
connection, Amazon's 429) is retried with backoff at most :data:`MAX_RETRIES` times. A *wait* (for the
fleet's quota, for another run's claim on the same document) is not a failure and never spends that
budget: waits are counted in a message header of their own, up to :data:`MAX_WAITS`. A task waiting
for the quota holds a reservation of the bucket's next free token when it comes within
:data:`QUOTA_RESERVE_HORIZON`: waiting tasks come back one by one, each at its own turn, instead of
all at once.

Every time limit and every retry countdown stays below the broker's visibility timeout, or kombu's
Redis transport would deliver a task that is still running or waiting a second time.

A retry carries the request's own headers (the product's and any a caller added), never the broker's:
on RabbitMQ a countdown passes through Celery's delay queues by dead-lettering, which stamps ``x-death``
on the message; a retry that carried it through the same delay queue again would be taken for a
dead-letter cycle, and RabbitMQ before 4.0.1 holds such a message for good instead of delivering it.
"""

from __future__ import annotations

import math
import random
from typing import Any, NoReturn

from celery import Task

from spreports.errors import QuotaWait, StorageUnavailable, TransientError

SOFT_TIME_LIMIT = 40 * 60
HARD_TIME_LIMIT = 45 * 60
MAX_RETRY_COUNTDOWN = 10 * 60
# A message is acknowledged at the latest a countdown plus a run after its delivery; five minutes spare.
# A dead worker's document does not wait for it: its claim lapses and the requeue task queues it again.
VISIBILITY_TIMEOUT = MAX_RETRY_COUNTDOWN + HARD_TIME_LIMIT + 5 * 60

MAX_RETRIES = 8
MAX_WAITS = 1000
BACKOFF_BASE_SECONDS = 2.0
# A full or read-only disk passes in minutes, not seconds: 30 s, 1, 2, 4, 8 min, then every 10 min.
STORAGE_BACKOFF_BASE_SECONDS = 30.0
# Come back this much after the reserved token's moment (worker clocks and Redis TIME differ a little).
RESERVATION_MARGIN_SECONDS = 0.25
QUOTA_RESERVE_HORIZON = MAX_RETRY_COUNTDOWN - 30
# A task sleeps in its worker slot for the fleet's quota at most this long; a longer wait is a reserved
# turn and a countdown. So at most rate x this + 1 tasks sleep on one bucket (getReport, 2/s: 3), and one
# seller's backlog cannot fill every slot of the fleet.
IN_SLOT_WAIT_SECONDS = 1.0

WAITS_HEADER = "spreports_waits"
PREPAID_HEADER = "spreports_prepaid_bucket"


def _header(task: Task, name: str) -> Any:  # type: ignore[type-arg]
    # Celery exposes a message's custom headers both in ``headers`` and as request attributes.
    headers = task.request.headers or {}
    return headers.get(name, getattr(task.request, name, None))


def retry_headers(task: Task, **ours: Any) -> dict[str, Any]:  # type: ignore[type-arg]
    """The headers of the task's retry: its request's, less those the broker set (``x-death``...), plus ``ours``."""
    # RabbitMQ's own headers all start with "x-" (x-death, x-first-death-queue, x-delivery-count...).
    kept = {name: value for name, value in (task.request.headers or {}).items() if not name.lower().startswith("x-")}
    return {**kept, **ours}


def waits(task: Task) -> int:  # type: ignore[type-arg]
    """How many of the task's retries were waits, not failures."""
    try:
        return max(int(_header(task, WAITS_HEADER) or 0), 0)
    except (TypeError, ValueError):
        return 0


def reserved_bucket(task: Task) -> str | None:  # type: ignore[type-arg]
    """The rate-limit bucket whose token an earlier run of this task reserved for this run, if any."""
    value = _header(task, PREPAID_HEADER)
    return value if isinstance(value, str) and value else None


def bounded_countdown(seconds: float) -> float:
    """``seconds`` within [0, :data:`MAX_RETRY_COUNTDOWN`]; NaN (a wait nobody can tell) is the longest."""
    if math.isnan(seconds):
        return float(MAX_RETRY_COUNTDOWN)
    return min(max(seconds, 0.0), MAX_RETRY_COUNTDOWN)


def wait_then_retry(task: Task, countdown: float, *, reserved: str | None = None) -> NoReturn:  # type: ignore[type-arg]
    """Run the task again after ``countdown`` s without spending its failure budget."""
    done = waits(task)
    raise task.retry(
        countdown=bounded_countdown(countdown),
        max_retries=MAX_WAITS + task.request.retries - done,
        headers=retry_headers(task, **{WAITS_HEADER: done + 1, PREPAID_HEADER: reserved or ""}),
    )


def retry_countdown(exc: TransientError, failures: int) -> float:
    """The wait before the next attempt: what the error asks for, else exponential backoff with full jitter."""
    if exc.retry_after is not None:
        wait = exc.retry_after + random.uniform(0, 1)
    elif isinstance(exc, StorageUnavailable):
        wait = STORAGE_BACKOFF_BASE_SECONDS * 2**failures * random.uniform(0.75, 1.0)
    else:
        wait = random.uniform(0, BACKOFF_BASE_SECONDS * 2**failures)
    # A wait asked for comes from outside (a header, a script's answer): never infinite, NaN or negative.
    return bounded_countdown(wait)


def retry_later(task: Task, exc: TransientError) -> NoReturn:  # type: ignore[type-arg]
    """Come back later: a quota wait as a wait (at its reserved turn), anything else as a failure.

    Re-raises ``exc`` when the failure budget is spent.
    """
    if isinstance(exc, QuotaWait):
        wait = exc.retry_after or 0.0
        if exc.reserved_bucket is not None:
            wait_then_retry(task, wait + RESERVATION_MARGIN_SECONDS, reserved=exc.reserved_bucket)
        # No turn within the horizon yet: look again then, spread so that the waiting tasks do not all ask at once.
        wait_then_retry(task, min(wait, QUOTA_RESERVE_HORIZON) * random.uniform(0.8, 1.0))
    done = waits(task)
    countdown = retry_countdown(exc, task.request.retries - done)
    headers = retry_headers(task, **{PREPAID_HEADER: ""})
    raise task.retry(exc=exc, countdown=countdown, max_retries=MAX_RETRIES + done, headers=headers)
