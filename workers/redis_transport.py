"""kombu's Redis transport, whose channels fail as a lost connection once their connection is gone.

When the broker connection fails, Celery's consumer collects it (which detaches kombu's transport from
its connection: ``transport.client = None``) and reconnects on a new one. Channels of the old
connection can still be used afterwards: a task that ends after the reconnection acknowledges its
message on the old channel, and closing a channel whose first close was cut short (it was draining a
pending BRPOP on the dead socket) puts its unacknowledged messages back. kombu's Redis channel then
reads its connection parameters from the detached ``None`` and raises ``AttributeError: 'NoneType'
object has no attribute 'hostname'``. Celery expects connection errors there, not that: the worker
stopped with "Unrecoverable error" and consumed nothing more once Redis was back (seen in the chaos
benchmark's Redis restart, about one run in ten).

The channel below raises redis' ``ConnectionError`` instead, which Celery and kombu handle as what it
is: the acknowledgement or the restore is given up, the message stays in kombu's ``unacked`` set in
Redis (restored after the visibility timeout) and its document in the product's in-flight list (queued
again by the requeue task once its claim lapses; a run that finds it stored does nothing more).

The channel also keeps one redis-py client for its publishes, acknowledgements and the like, where
kombu builds a new one (with its table of some 170 response callbacks) for each: a task's events, its
acknowledgement and each message a producer sends did.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kombu.transport
from kombu.transport import redis

TRANSPORT = "spreports.workers.redis_transport:Transport"
SCHEMES = ("redis", "rediss")


class Channel(redis.Channel):
    """kombu's Redis channel; once its connection is detached, a use of it is a connection error."""

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            from redis.exceptions import ConnectionError as RedisConnectionError

            raise RedisConnectionError("this channel's broker connection was closed (the worker reconnected)")
        params: dict[str, Any] = super()._connparams(asynchronous)  # type: ignore[misc]
        return params

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """``client``, else the channel's client on its current pool (built again when the pool is)."""
        if client:
            yield client
            return
        pool = self.pool
        kept = self.__dict__.get("_spreports_client")
        if kept is None or kept.connection_pool is not pool:
            # A redis-py client is safe to share: each command takes a connection from the pool.
            kept = self.__dict__["_spreports_client"] = self._create_client()  # type: ignore[attr-defined]
        yield kept


class Transport(redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel


def install() -> None:
    """Make ``redis://`` and ``rediss://`` broker URLs use this transport in this process (idempotent).

    By the alias kombu resolves the URL's scheme with, so the scheme keeps its meaning (``rediss``:
    TLS). kombu caches the class it resolved for a name: a cached one is dropped.
    """
    for scheme in SCHEMES:
        kombu.transport.TRANSPORT_ALIASES[scheme] = TRANSPORT
        getattr(kombu.transport, "_transport_cache", {}).pop(scheme, None)
