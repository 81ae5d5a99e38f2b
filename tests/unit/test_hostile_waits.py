"""Waits that come from outside (a host's ``Retry-After``, a script's answer) are finite and bounded."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import pytest
import requests
from celery import Task

from spreports.documents.fetch import _check_status
from spreports.errors import QuotaWait, RateLimited
from spreports.tasks.retrying import MAX_RETRY_COUNTDOWN, retry_countdown, retry_later

HOSTILE_WAITS = [math.nan, math.inf, -math.inf, 1e308, -5.0, 1e-300]


def throttled(retry_after: str | None) -> RateLimited:
    response = requests.Response()
    response.status_code = 429
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    with pytest.raises(RateLimited) as caught:
        _check_status(response, "bucket.example")
    return caught.value


# Retry-After -> the wait the download's failure asks for
RETRY_AFTER: dict[str | None, float] = {
    "inf": 5.0,
    "-inf": 5.0,
    "nan": 5.0,
    "1e308": 600.0,
    "1" * 400: 600.0,
    "86400": 600.0,
    "600": 600.0,
    "120": 120.0,
    "0": 1.0,
    "-1": 1.0,
    "abc": 5.0,
    "": 5.0,
    "Wed, 21 Oct 2015 07:28:00 GMT": 5.0,
    None: 5.0,
}


@pytest.mark.parametrize(("header", "wait"), RETRY_AFTER.items(), ids=lambda v: repr(v)[:20])
def test_a_hosts_retry_after_is_bounded(header: str | None, wait: float) -> None:
    assert throttled(header).retry_after == wait


@pytest.mark.parametrize("wait", HOSTILE_WAITS)
def test_a_failures_countdown_is_finite_and_bounded(wait: float) -> None:
    countdown = retry_countdown(RateLimited("throttled", retry_after=wait), 0)
    assert 0 <= countdown <= MAX_RETRY_COUNTDOWN


class Retried(Exception):
    def __init__(self, **options: Any) -> None:
        super().__init__("retry")
        self.options = options


def a_task() -> Task:  # type: ignore[type-arg]
    return SimpleNamespace(  # type: ignore[return-value]
        request=SimpleNamespace(headers={}, retries=0), retry=lambda **options: Retried(**options)
    )


@pytest.mark.parametrize("reserved", [None, "bucket"])
@pytest.mark.parametrize("wait", HOSTILE_WAITS)
def test_a_quota_waits_countdown_is_finite_and_bounded(wait: float, reserved: str | None) -> None:
    with pytest.raises(Retried) as caught:
        retry_later(a_task(), QuotaWait("in use", retry_after=wait, reserved_bucket=reserved))
    assert 0 <= caught.value.options["countdown"] <= MAX_RETRY_COUNTDOWN
