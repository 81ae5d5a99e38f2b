"""Connections to the product's Redis: a client for any Celery-style Redis URL, and a liveness check.

Which Redis (a configured server, or the embedded one a process starts) is decided by the process
that runs (``spreports.workers``); everything below it receives a URL.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis

from spreports.errors import RedisUnavailable


def connect(url: str, **kwargs: object) -> redis.Redis:
    """A redis-py client for a Celery-style Redis URL (``redis://``, ``rediss://``, ``redis+socket://``)."""
    parts = urlsplit(url)
    if parts.scheme in ("redis+socket", "unix"):
        return redis.Redis(unix_socket_path=parts.path, **kwargs)  # type: ignore[arg-type]
    return redis.Redis.from_url(url, **kwargs)


def ping(url: str, timeout: float = 2.0) -> None:
    """Raise :class:`RedisUnavailable` (naming the host, never a password) unless Redis answers."""
    try:
        connect(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping()
    except (redis.RedisError, OSError) as exc:
        raise RedisUnavailable(f"Redis at {safe_url(url)} does not answer: {type(exc).__name__}") from None


def safe_url(url: str) -> str:
    """Where a Redis URL points, without its credentials: the socket path, or scheme, host and port."""
    parts = urlsplit(url)
    if parts.scheme in ("redis+socket", "unix"):
        return parts.path
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}"


def persistence_warning(url: str) -> str | None:
    """Why the Redis at ``url`` would lose queued tasks on a restart (no AOF, no snapshots), or None.

    None as well when Redis does not say (``CONFIG`` disabled, as on some managed services).
    """
    client = connect(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        appendonly = client.config_get("appendonly").get("appendonly")
        save = client.config_get("save").get("save")
    except redis.ResponseError:
        return None
    except (redis.RedisError, OSError) as exc:
        raise RedisUnavailable(f"Redis at {safe_url(url)} does not answer: {type(exc).__name__}") from None
    if appendonly == "yes" or save:
        return None
    return (
        f"Redis at {safe_url(url)} keeps nothing on disk (appendonly no, no save points): queued tasks, claims "
        "and marks are lost when it restarts; set appendonly yes (the embedded Redis and docker-compose.yml do)"
    )
