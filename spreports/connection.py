"""Connections to the product's Redis: a client for any Celery-style Redis URL, and a liveness check.

Which Redis (a configured server, or the embedded one a process starts) is decided by the process
that runs (``spreports.workers``); everything below it receives a URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import redis

from spreports.errors import UnexpectedResponse
from spreports.redis_errors import redis_errors


def connect(url: str, **kwargs: object) -> redis.Redis:
    """A redis-py client for a Celery-style Redis URL (``redis://``, ``rediss://``, ``redis+socket://``)."""
    parts = urlsplit(url)
    if parts.scheme in ("redis+socket", "unix"):
        return redis.Redis(unix_socket_path=parts.path, **kwargs)  # type: ignore[arg-type]
    return redis.Redis.from_url(url, **kwargs)


def ping(url: str, timeout: float = 2.0) -> None:
    """Raise :class:`RedisUnavailable` (naming the host, never a password) unless Redis answers
    (:class:`UnexpectedResponse` when it refuses the ping: an ACL without it)."""
    with redis_errors("pinging it", where=safe_url(url)):
        connect(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping()


def safe_url(url: str) -> str:
    """Where a Redis URL points, without its credentials: the socket path, or scheme, host and port."""
    parts = urlsplit(url)
    if parts.scheme in ("redis+socket", "unix"):
        return parts.path
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"


@dataclass(frozen=True)
class Persistence:
    """What a Redis keeps on disk, as its ``CONFIG`` says."""

    #: Every write is appended to a log (AOF): a crash loses at most the last second.
    appendonly: bool
    #: The ``save`` rules (seconds, changes): a snapshot once ``changes`` writes are ``seconds`` old.
    save_points: tuple[tuple[int, int], ...]

    @property
    def window(self) -> tuple[int, int] | None:
        """The longest a write may wait for a snapshot, with the fewest writes that start the wait: the rule with
        the fewest changes (a trickle of writes meets no other); None without save points."""
        if not self.save_points:
            return None
        return min(self.save_points, key=lambda rule: (rule[1], rule[0]))


def persistence(url: str) -> Persistence | None:
    """What the Redis at ``url`` keeps on disk; None when it does not say (``CONFIG`` disabled, as on some
    managed services). :class:`RedisUnavailable` when it does not answer."""
    client = connect(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        with redis_errors("reading its persistence settings", where=safe_url(url)):
            appendonly = client.config_get("appendonly").get("appendonly")
            save = client.config_get("save").get("save")
    except UnexpectedResponse:
        return None  # CONFIG refused (disabled or not granted, as on managed services): Redis does not say
    numbers = [int(part) for part in (save or "").split() if part.isdigit()]
    return Persistence(appendonly == "yes", tuple(zip(numbers[::2], numbers[1::2], strict=False)))


def persistence_warning(url: str, role: str = "", lost: str = "queued tasks, claims and marks") -> str | None:
    """Why the Redis at ``url`` would lose ``lost`` on a crash or restart (no AOF: no snapshots, or only
    snapshots), or None. ``role`` names what the Redis is to the deployment ("the broker's Redis"); None as
    well when Redis does not say. :class:`RedisUnavailable` when it does not answer."""
    found = persistence(url)
    if found is None or found.appendonly:
        return None
    where = f"{role or 'Redis'} at {safe_url(url)}"
    window = found.window
    if window is None:
        return (
            f"{where} keeps nothing on disk (appendonly no, no save points): {lost} are lost when it restarts; "
            "set appendonly yes (the embedded Redis and docker-compose.yml do)"
        )
    seconds, changes = window
    rules = " ".join(f"{s} {c}" for s, c in found.save_points)
    # A snapshot is a point in time: everything written since the last one is gone after a crash.
    fewer = f" (fewer than {changes} writes are not saved at all until more come)" if changes > 1 else ""
    return (
        f"{where} keeps only a snapshot every {seconds} s (save {rules}, appendonly no): up to {seconds} s of "
        f"{lost} lost on a crash{fewer}; set appendonly yes"
    )
