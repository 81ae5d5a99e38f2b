"""When the schedule sync runs, and that it runs once: the fleet's shared memory of it, in Redis.

- The sync runs under one lock (``SET NX`` with a TTL, released in ``finally`` by its holder only), so
  two beats, or a beat and a person running ``spreports schedules sync``, never make the same calls twice.
- What was applied last (the file's digest and the time) says whether a sync is due: the file changed,
  the period passed, or it never ran.
- A due sync is marked queued (``SET NX`` with a TTL) so that the frequent check does not queue another
  while one waits for a worker.
- A ``[[requests]]`` entry's period is claimed per seller with ``SET NX``: a restarted beat, or a
  second one, never requests the same period twice; its restatement is claimed the same way.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis

from spreports import keys
from spreports.redis_errors import redis_errors

__all__ = ["SyncState", "claim_request_period", "request_period_claimed", "request_period_key"]

PREFIX = keys.SCHEDULES.prefix
REQUEST_PREFIX = keys.REQUEST_PERIOD.prefix
# Releases or extends the lock only for the holder whose token it still carries.
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_EXTEND = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)


@dataclass(frozen=True)
class Applied:
    """The last sync that finished: the file's digest and when."""

    digest: str
    at: datetime


class SyncLock:
    """The held sync lock; :meth:`renew` keeps it while a long sync goes on."""

    def __init__(self, client: redis.Redis, key: str, token: str, ttl: timedelta) -> None:
        self._client, self._key, self._token, self._ttl = client, key, token, ttl

    @redis_errors("renewing the schedule sync's lock")
    def renew(self) -> bool:
        """Push the lock's expiry ``ttl`` ahead; False when it was lost (it lapsed and another took it)."""
        milliseconds = int(self._ttl.total_seconds() * 1000)
        return bool(self._client.eval(_EXTEND, 1, self._key, self._token, milliseconds))

    @redis_errors("releasing the schedule sync's lock")
    def release(self) -> None:
        """Let the next sync run."""
        self._client.eval(_RELEASE, 1, self._key, self._token)


class SyncState:
    """The fleet's record of schedule syncs, in one Redis."""

    def __init__(self, client: redis.Redis, prefix: str = PREFIX) -> None:
        self.client = client
        self.lock_key = f"{prefix}sync-lock"
        self.applied_key = f"{prefix}applied"
        self.queued_key = f"{prefix}sync-queued"

    @contextmanager
    def lock(self, ttl: timedelta) -> Iterator[SyncLock | None]:
        """Hold the sync lock for the block (None: another sync holds it). A dead holder's lapses after ``ttl``."""
        token = secrets.token_hex(16)
        with redis_errors("taking the schedule sync's lock"):
            taken = self.client.set(self.lock_key, token, nx=True, px=int(ttl.total_seconds() * 1000))
        if not taken:
            yield None
            return
        held = SyncLock(self.client, self.lock_key, token, ttl)
        try:
            yield held
        finally:
            held.release()

    @redis_errors("reading the last schedule sync")
    def applied(self) -> Applied | None:
        """The last finished sync, if any."""
        found = {_text(k): _text(v) for k, v in self.client.hgetall(self.applied_key).items()}
        digest, at = found.get("digest"), found.get("at")
        if digest is None or at is None:
            return None
        return Applied(digest, datetime.fromtimestamp(float(at), UTC))

    @redis_errors("recording a schedule sync")
    def record_applied(self, digest: str, at: datetime) -> None:
        """Remember a finished sync of the file with ``digest``."""
        self.client.hset(self.applied_key, mapping={"digest": digest, "at": str(at.timestamp())})

    def due(self, digest: str, now: datetime, period: timedelta) -> str | None:
        """Why a sync is due now (``never ran``, ``file changed``, ``period``), or None."""
        last = self.applied()
        if last is None:
            return "never ran"
        if last.digest != digest:
            return "file changed"
        if now - last.at >= period:
            return "period"
        return None

    @redis_errors("marking a schedule sync queued")
    def mark_queued(self, ttl: timedelta) -> bool:
        """Mark a sync queued; False when one is queued already (and not yet started or expired)."""
        return bool(self.client.set(self.queued_key, "1", nx=True, px=int(ttl.total_seconds() * 1000)))

    @redis_errors("clearing the schedule sync's queued mark")
    def clear_queued(self) -> None:
        """A sync started: the next due one may be queued."""
        self.client.delete(self.queued_key)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def request_period_key(seller_id: str, entry_key: str, period_start: datetime) -> str:
    """The Redis key of one entry's period for a seller."""
    return f"{REQUEST_PREFIX}{entry_key}:{seller_id}:{int(period_start.timestamp())}"


@redis_errors("claiming a schedule entry's period")
def claim_request_period(client: redis.Redis, seller_id: str, entry_key: str, period_start: datetime,
                         ttl: timedelta) -> bool:  # fmt: skip
    """Claim the request of one entry's period for a seller: True once per (entry, seller, period)."""
    key = request_period_key(seller_id, entry_key, period_start)
    return bool(client.set(key, "1", nx=True, px=int(ttl.total_seconds() * 1000)))


@redis_errors("reading a schedule entry's period")
def request_period_claimed(client: redis.Redis, seller_id: str, entry_key: str, period_start: datetime) -> bool:
    """Whether one entry's period was requested for a seller (and its claim has not expired)."""
    return bool(client.exists(request_period_key(seller_id, entry_key, period_start)))
