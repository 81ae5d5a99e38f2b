"""The one boundary between redis-py's errors and the product's error tree.

Every call to the product's Redis runs inside :func:`redis_errors` (a context manager, or a decorator:
``@redis_errors("reading the ledger")``), which turns what redis-py and the socket raise into:

- :class:`RedisUnavailable` (transient) when Redis cannot serve now: no connection, a timeout, a
  server still loading its data, a replica that turned read-only, a full memory, a failed snapshot
  (``MISCONF``), a busy script; the same command may pass later;
- :class:`UnexpectedResponse` (permanent) when Redis refused the command itself (``WRONGTYPE``,
  ``NOPERM``, an unknown command): repeating it cannot pass.

The message names what was being done and the error's type, never the error's own text (it may hold
a key, a value or, for a URL, a password); ``where`` adds where Redis is, already made safe by the
caller (:func:`spreports.connection.safe_url`). Product errors raised inside the block go through
untouched. Sites that only keep books on a best-effort basis catch :data:`FAILURES`.

It lives apart from :mod:`spreports.connection` because every module that talks to Redis imports it
(the ledgers, the quotas, the relay), while only the processes open connections; it needs nothing but
redis-py and the error tree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import ContextDecorator
from types import TracebackType
from typing import TypeVar

import redis

from spreports.errors import RedisUnavailable, SpreportsError, UnexpectedResponse

T = TypeVar("T")

#: What :func:`redis_errors` raises: a best-effort site catches these and goes on.
FAILURES: tuple[type[SpreportsError], ...] = (RedisUnavailable, UnexpectedResponse)

# Refusals that say "not now" rather than "never": the server is read-only (a failover), out of memory,
# cannot write its snapshot, is busy with a script, or a cluster is re-sharding.
_NOT_NOW = (
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)
_CODE = re.compile(r"[A-Z][A-Z0-9_]{1,31}")
# The codes redis-py strips from the text of the errors it has a class for.
_STRIPPED_CODES: dict[type[BaseException], str] = {
    redis.exceptions.ReadOnlyError: "READONLY",
    redis.exceptions.OutOfMemoryError: "OOM",
    redis.exceptions.BusyLoadingError: "LOADING",
    redis.exceptions.NoPermissionError: "NOPERM",
    redis.exceptions.NoScriptError: "NOSCRIPT",
    redis.exceptions.TryAgainError: "TRYAGAIN",
    redis.exceptions.ExecAbortError: "EXECABORT",
}
_NOT_NOW_CODES = ("MISCONF", "BUSY", "LOADING", "MASTERDOWN", "TRYAGAIN", "READONLY", "OOM")


# Lower case: at its sites it reads as a function, `with redis_errors("reading the ledger"):`.
class redis_errors(ContextDecorator):
    """Run the block (or, as a decorator, the function), turning a Redis failure into the product's error
    (see the module's docstring).

    ``doing`` says what the block does ("claiming the document"); ``where`` (optional) where Redis is,
    without credentials. A class rather than a generator: entered on every Redis call of a document, it
    costs about a microsecond (a generator-based one, about twice that).
    """

    __slots__ = ("doing", "where")

    def __init__(self, doing: str, *, where: str | None = None) -> None:
        self.doing = doing
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if isinstance(exc, redis.RedisError | OSError):
            raise translate(exc, self.doing, where=self.where) from None


def redis_call(doing: str, action: Callable[[], T]) -> T:
    """``action()`` (one or a few commands, as a lambda) inside :func:`redis_errors`."""
    with redis_errors(doing):
        return action()


def translate(exc: BaseException, doing: str, *, where: str | None = None) -> SpreportsError:
    """The product's error for a redis-py (or socket) error ``exc`` met while ``doing``."""
    subject = f"Redis at {where}" if where else "Redis"
    kind = type(exc).__name__
    if isinstance(exc, redis.ResponseError) and not _not_now(exc):
        return UnexpectedResponse(f"{subject} refused the command: {_code(exc)} ({kind}; {doing})")
    if isinstance(exc, redis.ResponseError | redis.exceptions.BusyLoadingError):
        return RedisUnavailable(f"{subject} cannot serve now: {_code(exc)} ({kind}; {doing})")
    return RedisUnavailable(f"{subject} does not answer: {kind} ({doing})")


def _not_now(exc: redis.ResponseError) -> bool:
    return isinstance(exc, _NOT_NOW) or _code(exc) in _NOT_NOW_CODES


def _code(exc: BaseException) -> str:
    # Redis starts an error with its code in capitals (WRONGTYPE, NOPERM, MISCONF); the rest may quote a
    # key or a value, so only the code is kept. redis-py 8 keeps it as ``status_code``; older ones leave it
    # in the text, except for the errors they have a class for (the code is then stripped).
    code = getattr(exc, "status_code", None) or str(exc).split(" ", 1)[0]
    if isinstance(code, str) and _CODE.fullmatch(code):
        return code
    return _STRIPPED_CODES.get(type(exc), "ERR")
