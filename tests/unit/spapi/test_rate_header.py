"""``x-amzn-RateLimit-Limit`` is a number from outside: what reaches the fleet's bucket is a plausible rate.

The transport reads the header of a successful answer and tells the shared bucket (a Lua script in
Redis) the rate to follow. Redis and Amazon are faked at their seams: the script is a recorder.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pytest
import requests

from spreports.spapi.operations import CREATE_REPORT, GET_REPORT, Operation
from spreports.spapi.ratelimit import MAX_RATE_FACTOR, MIN_RATE_DIVISOR, RateLimiter
from spreports.spapi.transport import CallContext, Transport

HEADER = "x-amzn-RateLimit-Limit"


class RecordingScript:
    """Stands for the bucket's Lua script: records each call, grants a token, says the rate it holds."""

    def __init__(self) -> None:
        self.calls: list[list[Any]] = []
        self.rate: str | None = None  # none set: the documented one (the call's default)

    def __call__(self, keys: Sequence[str], args: Sequence[Any]) -> list[Any]:
        self.calls.append(list(args))
        if args[0] == "set_rate":
            self.rate = args[-1]
        return [1, "0", "1", self.rate or args[1]]

    def rates_set(self) -> list[float]:
        return [float(args[-1]) for args in self.calls if args[0] == "set_rate"]


class FakeRedis:
    def __init__(self) -> None:
        self.script = RecordingScript()

    def register_script(self, text: str) -> RecordingScript:
        return self.script


class Answering(requests.Session):
    """Amazon answering 200 with the given rate header (None: no header)."""

    def __init__(self, header: str | None) -> None:
        super().__init__()
        self.header = header

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = requests.Response()
        response.status_code = 200
        response._content = b"{}"
        if self.header is not None:
            response.headers[HEADER] = self.header
        return response


class Token:
    def token(self) -> str:
        return "access-token"

    def invalidate(self, token: str) -> None:
        pass


def rates_told(operation: Operation, *headers: str | None) -> list[float]:
    """The rates the bucket of ``operation`` was told after one answer per header."""
    redis = FakeRedis()
    limiter = RateLimiter(redis, sleep=lambda seconds: None)  # type: ignore[arg-type]
    for header in headers:
        transport = Transport("https://sp.example", Answering(header), limiter, timeout=(1.0, 1.0))
        params = {"reportId": "R1"} if "{reportId}" in operation.path else None
        transport.call(operation, CallContext(seller="S", region="na"), Token(), path_params=params)
    return redis.script.rates_set()


LOW, HIGH = CREATE_REPORT.rate / MIN_RATE_DIVISOR, CREATE_REPORT.rate * MAX_RATE_FACTOR
DOCUMENTED = CREATE_REPORT.rate

# header -> the rate createReport's bucket is told (None: nothing, the header says nothing)
CREATE_REPORT_HEADERS: dict[str, float | None] = {
    "1e-300": DOCUMENTED,
    "0": DOCUMENTED,
    "-1": DOCUMENTED,
    "nan": DOCUMENTED,
    "inf": DOCUMENTED,
    "-inf": DOCUMENTED,
    "1e308": DOCUMENTED,
    "abc": DOCUMENTED,
    "0x10": DOCUMENTED,
    "1" * 400: DOCUMENTED,
    "0.0001": DOCUMENTED,  # one request in almost three hours
    "": None,
    "   ": None,
    "0.0167": 0.0167,
    "0.5": 0.5,
    "5": 5.0,  # the sandbox's plan
    repr(LOW * 1.001): LOW * 1.001,
    repr(LOW * 0.999): DOCUMENTED,
    repr(HIGH * 0.999): HIGH * 0.999,
    repr(HIGH * 1.001): DOCUMENTED,
}


@pytest.mark.parametrize(("header", "told"), CREATE_REPORT_HEADERS.items(), ids=lambda v: repr(v)[:20])
def test_a_header_reaches_the_bucket_only_as_a_plausible_rate(header: str, told: float | None) -> None:
    # The bucket follows the documented rate until told otherwise: being told it again costs no round trip.
    assert rates_told(CREATE_REPORT, header) == ([] if told in (None, DOCUMENTED) else [pytest.approx(told)])


@pytest.mark.parametrize("operation", [CREATE_REPORT, GET_REPORT], ids=lambda op: op.name)
def test_the_documented_rates_are_followed_without_a_round_trip(operation: Operation) -> None:
    assert rates_told(operation, repr(operation.rate)) == []
    assert rates_told(operation, repr(operation.rate * 0.5), repr(operation.rate)) == [
        operation.rate * 0.5,
        operation.rate,
    ]


def test_a_missing_header_changes_nothing() -> None:
    assert rates_told(GET_REPORT, None) == []


def test_an_implausible_header_after_a_good_one_restores_the_documented_rate() -> None:
    assert rates_told(GET_REPORT, "10", "1e-300", "10") == [10.0, GET_REPORT.rate, 10.0]


def test_each_anomaly_is_logged_once_per_bucket_and_value(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="spreports.spapi.ratelimit"):
        rates_told(GET_REPORT, "1e-300", "1e-300", "nan", "1e-300", "nan")
    lines = [r.getMessage() for r in caplog.records if "x-amzn-RateLimit-Limit" in r.getMessage()]
    assert len(lines) == 2
    assert "'1e-300'" in lines[0] and "documented 2/s" in lines[0]
    assert "'nan'" in lines[1]
