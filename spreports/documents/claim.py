"""A Redis claim on one document, so two workers never download the same document at once."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from spreports.errors import ServiceUnavailable

log = logging.getLogger(__name__)

CLAIM_PREFIX = "spreports:claim:document"

# Delete the claim only if we still hold it (a claim that expired may belong to someone else now).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# Extend the claim only if we still hold it.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def is_claimed(client: redis.Redis, seller_id: str, report_document_id: str) -> bool:
    """Whether a run holds the document's claim (it is being retrieved right now)."""
    return bool(client.exists(f"{CLAIM_PREFIX}:{seller_id}:{report_document_id}"))


def claim_owner(label: str) -> str:
    """An owner name unique to one run: ``label`` (the task id) plus host, process and a random part.

    Duplicate tasks share a task id (the relay names them after the notification), so the task id
    alone would let a duplicate take a live claim "back".
    """
    return f"{label}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


class DocumentClaim:
    """``SET key owner NX EX ttl`` on (seller, reportDocumentId), renewed while the download runs.

    ``owner`` is unique per run (:func:`claim_owner`): nobody else ever holds the same claim. The
    holder keeps it with :meth:`kept`, which renews it every third of ``ttl`` from a heartbeat thread;
    a worker that died stops renewing, so its claim lapses within ``ttl`` and the redelivered task
    (which finds it taken and waits) gets it then. Redis being unreachable while acquiring is a
    :class:`ServiceUnavailable` (transient: the task retries).
    """

    def __init__(self, client: redis.Redis, seller_id: str, report_document_id: str, *, owner: str, ttl: int) -> None:
        self.client = client
        self.key = f"{CLAIM_PREFIX}:{seller_id}:{report_document_id}"
        self.owner = owner
        self.ttl = ttl

    def acquire(self) -> bool:
        """Take the claim; False when another run holds it."""
        try:
            return bool(self.client.set(self.key, self.owner, nx=True, ex=self.ttl))
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"Redis is unavailable for the document claim ({type(exc).__name__})") from None

    def renew(self) -> bool:
        """Extend our claim by ``ttl``; False when we no longer hold it (it lapsed, maybe to another run)."""
        try:
            return bool(self.client.eval(_RENEW, 1, self.key, self.owner, self.ttl))
        except redis.RedisError as exc:
            raise ServiceUnavailable(f"Redis is unavailable for the document claim ({type(exc).__name__})") from None

    def remaining(self) -> int:
        """Seconds until the current claim expires (0 when there is none or Redis cannot tell)."""
        try:
            return max(int(self.client.ttl(self.key)), 0)
        except redis.RedisError:
            return 0

    def release(self) -> None:
        """Give the claim up if we hold it; if Redis is unreachable the claim simply expires."""
        try:
            self.client.eval(_RELEASE, 1, self.key, self.owner)
        except redis.RedisError as exc:
            log.warning("could not release the claim on %s (%s); it expires by itself", self.key, type(exc).__name__)

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the (acquired) claim from a heartbeat thread until the block ends, then release it."""
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(stop,), name="claim-heartbeat", daemon=True)
        heartbeat.start()
        try:
            yield
        finally:
            stop.set()
            heartbeat.join()
            self.release()

    def _heartbeat(self, stop: threading.Event) -> None:
        # A third of the TTL: two renewals may fail (a Redis blip) before the claim lapses.
        while not stop.wait(self.ttl / 3):
            try:
                if not self.renew():
                    log.warning("lost the claim on %s (it lapsed); another worker may start on it", self.key)
                    return
            except ServiceUnavailable as exc:
                log.warning("could not renew the claim on %s (%s); trying again", self.key, exc)
