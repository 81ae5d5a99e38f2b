"""A Redis claim on one document, so two workers never download the same document at once."""

from __future__ import annotations

import logging

import redis

from spreports.errors import ServiceUnavailable

log = logging.getLogger(__name__)

CLAIM_PREFIX = "spreports:claim:document"

# Delete the claim only if we still hold it (a claim that expired may belong to someone else now).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class DocumentClaim:
    """``SET key owner NX EX ttl`` on (seller, reportDocumentId).

    ``owner`` is the Celery task id. A task redelivered after its worker died (acks_late +
    reject_on_worker_lost) carries the same id, so it takes its own claim back at once instead of
    waiting for the TTL; a duplicate task (another id) finds the claim taken and retries later.
    Redis being unreachable is a :class:`ServiceUnavailable` (transient: the task retries).
    """

    def __init__(self, client: redis.Redis, seller_id: str, report_document_id: str, *, owner: str, ttl: int) -> None:
        self.client = client
        self.key = f"{CLAIM_PREFIX}:{seller_id}:{report_document_id}"
        self.owner = owner
        self.ttl = ttl

    def acquire(self) -> bool:
        """Take the claim (or take back our own); False when another task holds it."""
        try:
            if self.client.set(self.key, self.owner, nx=True, ex=self.ttl):
                return True
            holder = self.client.get(self.key)
            if holder is not None and (holder.decode() if isinstance(holder, bytes) else holder) == self.owner:
                self.client.expire(self.key, self.ttl)
                return True
            return False
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
