"""A retry's headers: the request's own and the product's, never the broker's dead-letter history."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from celery import Task

from spreports.tasks.retrying import PREPAID_HEADER, WAITS_HEADER, retry_headers, waits


def task_with(headers: dict[str, Any] | None) -> Task:  # type: ignore[type-arg]
    return SimpleNamespace(request=SimpleNamespace(headers=headers))  # type: ignore[return-value]


# What RabbitMQ stamps on a message that passed through two of Celery's delay queues.
DEAD_LETTERED = {
    "x-death": [
        {"count": 1, "reason": "expired", "queue": "celery_delayed_0", "exchange": "celery_delayed_0",
         "time": datetime(2026, 12, 7), "routing-keys": ["0.1.1.documents"]},
        {"count": 1, "reason": "expired", "queue": "celery_delayed_1", "exchange": "celery_delayed_27",
         "time": datetime(2026, 12, 7), "routing-keys": ["0.1.1.documents"]},
    ],
    "x-first-death-exchange": "celery_delayed_27",
    "x-first-death-queue": "celery_delayed_1",
    "x-first-death-reason": "expired",
    "x-last-death-exchange": "celery_delayed_0",
    "x-last-death-queue": "celery_delayed_0",
    "x-last-death-reason": "expired",
    "X-Delivery-Count": 2,
}  # fmt: skip


def test_the_brokers_dead_letter_headers_are_dropped() -> None:
    task = task_with({**DEAD_LETTERED, WAITS_HEADER: 3, "tenant": "eu"})
    headers = retry_headers(task, **{WAITS_HEADER: 4, PREPAID_HEADER: ""})
    assert headers == {WAITS_HEADER: 4, PREPAID_HEADER: "", "tenant": "eu"}


@pytest.mark.parametrize("headers", [None, {}])
def test_a_request_without_headers_gets_only_ours(headers: dict[str, Any] | None) -> None:
    assert retry_headers(task_with(headers), **{PREPAID_HEADER: "bucket"}) == {PREPAID_HEADER: "bucket"}


def test_the_wait_count_survives_the_filtering() -> None:
    task = task_with({**DEAD_LETTERED, WAITS_HEADER: 5})
    assert waits(task_with(retry_headers(task))) == 5
