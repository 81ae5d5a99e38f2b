"""The one Redis boundary: each redis-py (or socket) error becomes the same product error everywhere, with a
message naming what was being done and holding nothing of the error's own text (a password, a key, a value)."""

from __future__ import annotations

import errno

import pytest
import redis

from spreports.errors import RedisUnavailable, SettingsError, SpreportsError, UnexpectedResponse
from spreports.redis_errors import FAILURES, redis_call, redis_errors

SECRET = "s3cret-pass"


class FailingClient:
    """A client whose every command raises ``error``, as redis-py does when the server or the socket fails."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def get(self, key: str) -> bytes:
        raise self.error


# What the server (or the socket) says, each with a secret in its text: none may reach the message. A Redis that
# cannot serve now is transient (the same command may pass later); a command it refuses is permanent.
UNAVAILABLE: list[tuple[BaseException, str]] = [
    (redis.ConnectionError(f"Error 111 connecting to redis://:{SECRET}@10.0.0.1:6379"), "does not answer"),
    (redis.TimeoutError(f"Timeout reading from redis://:{SECRET}@host"), "does not answer"),
    (ConnectionResetError(errno.ECONNRESET, f"reset by {SECRET}"), "does not answer"),
    (OSError(errno.EHOSTUNREACH, f"no route to {SECRET}"), "does not answer"),
    (redis.AuthenticationError(f"invalid password {SECRET}"), "does not answer"),
    (
        redis.exceptions.BusyLoadingError(f"Redis is loading the dataset in memory {SECRET}"),
        "cannot serve now: LOADING",
    ),
    (redis.exceptions.ReadOnlyError(f"You can't write against a read only replica. {SECRET}"), "now: READONLY"),
    (redis.exceptions.OutOfMemoryError(f"command not allowed when used memory > 'maxmemory' {SECRET}"), "now: OOM"),
    (redis.ResponseError(f"MISCONF Redis is configured to save RDB snapshots {SECRET}"), "now: MISCONF"),
    (redis.ResponseError(f"BUSY Redis is busy running a script {SECRET}"), "now: BUSY"),
]
REFUSED: list[tuple[BaseException, str]] = [
    (redis.ResponseError(f"WRONGTYPE Operation against a key holding the wrong kind of value {SECRET}"), "WRONGTYPE"),
    (redis.exceptions.NoPermissionError(f"this user has no permissions to run the 'get' command {SECRET}"), "NOPERM"),
    (redis.ResponseError(f"unknown command 'GETX', with args beginning with: '{SECRET}'"), "ERR"),
]
CASES = [(error, RedisUnavailable, said) for error, said in UNAVAILABLE] + [
    (error, UnexpectedResponse, f"refused the command: {code} ") for error, code in REFUSED
]


@pytest.mark.parametrize(("error", "product", "said"), CASES, ids=[type(case[0]).__name__ for case in CASES])
def test_each_redis_error_becomes_one_product_error(
    error: BaseException, product: type[SpreportsError], said: str
) -> None:
    with pytest.raises(product) as raised, redis_errors("reading the ledger"):
        FailingClient(error).get("spreports:fatal:X")
    message = str(raised.value)
    assert said in message and type(error).__name__ in message and "reading the ledger" in message
    assert SECRET not in message and "spreports:fatal" not in message
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_where_names_the_server_and_the_decorator_form_maps_the_same() -> None:
    @redis_errors("pinging", where="redis://10.0.0.1:6379")
    def ping() -> bytes:
        return FailingClient(redis.ConnectionError(f"redis://:{SECRET}@10.0.0.1:6379")).get("x")

    with pytest.raises(RedisUnavailable, match=r"^Redis at redis://10\.0\.0\.1:6379 does not answer: ConnectionError"):
        ping()


def test_product_errors_and_other_exceptions_go_through_untouched() -> None:
    ours = SettingsError("SPREPORTS_REDIS_URL: not a URL")
    with pytest.raises(SettingsError) as raised, redis_errors("reading"):
        raise ours
    assert raised.value is ours
    with pytest.raises(KeyError), redis_errors("reading"):
        raise KeyError("a bug stays a bug")


def test_best_effort_sites_catch_everything_the_boundary_raises() -> None:
    for error, _ in UNAVAILABLE + REFUSED:
        with pytest.raises(SpreportsError) as raised, redis_errors("keeping books"):
            FailingClient(error).get("k")
        assert isinstance(raised.value, FAILURES)


def test_one_command_as_a_lambda_goes_through_the_same_boundary() -> None:
    assert redis_call("reading", lambda: 3) == 3
    with pytest.raises(RedisUnavailable, match=r"does not answer: TimeoutError \(reading the registry\)$"):
        redis_call("reading the registry", lambda: FailingClient(redis.TimeoutError(SECRET)).get("k"))
