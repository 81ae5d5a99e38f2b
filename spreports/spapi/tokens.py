"""Access tokens shared by the fleet: one Redis entry per credential, one refresh at a time.

A :class:`SharedTokenCache` holds one token (an LWA access token, a Restricted Data Token). Lookups
go to the in-process copy first, then to Redis; only when both are stale does a process take the
key's Redis lock, look again (another process may just have refreshed) and fetch a new token. So
however many workers ask at once, each credential is refreshed once. Tokens count as stale
``margin`` seconds (60) before they expire, or a tenth of their lifetime before when that is shorter. Redis keeps the entry with a TTL of the usable lifetime,
so Redis's clock, not each machine's, decides when a token is stale.

Token values are secrets: they live in memory and, sealed (:mod:`spreports.spapi.sealing`), in
Redis; they are never logged, put in an exception, or shown by ``repr``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import redis

from spreports import keys
from spreports.errors import ServiceUnavailable
from spreports.redis_errors import redis_errors
from spreports.spapi.sealing import TokenSealer

log = logging.getLogger(__name__)

#: Treat a token as expired this many seconds early (Amazon's SDKs use 60 s).
REFRESH_MARGIN_SECONDS = 60.0
#: ... but never more than this share of its lifetime: a short-lived token (a simulator's accelerated
#: clock turns Amazon's hour into a minute) is still reused for most of its life, not fetched per call.
REFRESH_MARGIN_SHARE = 0.1
#: The token lifetimes taken at Amazon's word: an hour is LWA's and the Tokens API's; a simulator's
#: accelerated clock makes it a second or more. Anything else (0.001, Infinity, 1e308) is an anomaly:
#: it would cache a token for no time at all or forever (and overflow Redis's expiry).
MIN_LIFETIME_SECONDS = 1.0
MAX_LIFETIME_SECONDS = 24 * 3600.0
#: The lifetime an anomalous ``expires_in`` is read as: Amazon's documented hour. Should the token
#: expire sooner, Amazon's "expired" answer makes the transport fetch a fresh one (once).
DEFAULT_LIFETIME_SECONDS = 3600.0
#: How long a refresher may hold the lock, and how long others wait for it.
LOCK_TIMEOUT_SECONDS = 30.0
KEY_PREFIX = keys.TOKEN.prefix

# Delete the entry only if it still holds the sealed token the caller saw rejected.
_DELETE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class TokenSource(Protocol):
    """Something that hands out a bearer token for the ``x-amz-access-token`` header."""

    def token(self) -> str:
        """A token valid for at least the refresh margin."""
        ...

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (Amazon said it expired) so the next :meth:`token` gets a fresh one."""
        ...


@dataclass(frozen=True)
class FetchedToken:
    """A token fresh from its issuer and its lifetime in seconds."""

    value: str = field(repr=False)
    expires_in: float


class LocalTokens:
    """The in-process copies of tokens, shared by every client of the process (and its threads)."""

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, key: str, now: float) -> str | None:
        """The token cached under ``key`` if still usable at ``now``."""
        entry = self._tokens.get(key)
        return entry[0] if entry is not None and now < entry[1] else None

    def put(self, key: str, token: str, usable_until: float) -> None:
        """Remember ``token`` until ``usable_until``."""
        self._tokens[key] = (token, usable_until)

    def drop(self, key: str, token: str | None = None) -> None:
        """Forget the token under ``key`` (only if it is ``token``, when given)."""
        entry = self._tokens.get(key)
        if entry is not None and (token is None or entry[0] == token):
            self._tokens.pop(key, None)

    def clear(self) -> None:
        """Forget every token (e.g. between tests that restart a fake token endpoint)."""
        self._tokens.clear()

    def lock(self, key: str) -> threading.Lock:
        """The lock that queues this process's threads refreshing ``key``."""
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())


#: The process-wide store used unless a test passes its own.
PROCESS_TOKENS = LocalTokens()


def fingerprint(*parts: str) -> str:
    """A short, one-way name for a credential, fit for a Redis key (never the secret itself)."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()
    return digest[:16]


def bounded_lifetime(expires_in: float, what: str) -> float:
    """``expires_in`` when it is a plausible lifetime, else :data:`DEFAULT_LIFETIME_SECONDS` (a logged anomaly).

    ``what`` names the token in the log line (a cache key: never the token itself).
    """
    if math.isfinite(expires_in) and MIN_LIFETIME_SECONDS <= expires_in <= MAX_LIFETIME_SECONDS:
        return expires_in
    log.warning(
        "token %s came with expires_in %.6g s, outside %g to %g s: an anomaly; using %g s",
        what, expires_in, MIN_LIFETIME_SECONDS, MAX_LIFETIME_SECONDS, DEFAULT_LIFETIME_SECONDS,
    )  # fmt: skip
    return DEFAULT_LIFETIME_SECONDS


def refresh_margin(expires_in: float, margin: float = REFRESH_MARGIN_SECONDS) -> float:
    """How long before its expiry a token of ``expires_in`` seconds counts as stale.

    ``margin`` for ordinary tokens (3600 s: 60 s early); a tenth of the lifetime for short ones.
    """
    return min(margin, max(expires_in, 0.0) * REFRESH_MARGIN_SHARE)


class SharedTokenCache:
    """One token, cached in process and (sealed) in Redis, refreshed by ``fetch`` under a Redis lock."""

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        fetch: Callable[[], FetchedToken],
        *,
        sealer: TokenSealer,
        margin: float = REFRESH_MARGIN_SECONDS,
        lock_timeout: float = LOCK_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        local: LocalTokens = PROCESS_TOKENS,
    ) -> None:
        self._redis = client
        self.key = f"{KEY_PREFIX}:{key}"
        self._fetch = fetch
        self._sealer = sealer
        self._margin = margin
        self._lock_timeout = lock_timeout
        self._clock = clock
        self._local = local
        self._delete_if_equal = client.register_script(_DELETE_IF_EQUAL)

    def __repr__(self) -> str:
        return f"SharedTokenCache(key={self.key!r})"

    def token(self) -> str:
        """A usable token: in-process copy, else Redis's, else a new one fetched under the lock."""
        token = self._local.get(self.key, self._clock())
        if token is not None:
            return token
        # Threads of one process queue here, so a process sends at most one lock request at a time.
        with self._local.lock(self.key):
            return self._local.get(self.key, self._clock()) or self._token_from_redis() or self._refresh()

    def invalidate(self, token: str) -> None:
        """Drop ``token`` here and in Redis, unless another process already replaced it there."""
        self._local.drop(self.key, token)
        with redis_errors("dropping a token from the cache"):
            stored = self._redis.get(self.key)
            if stored is not None and self._sealer.unseal(stored) == token:
                self._delete_if_equal(keys=[self.key], args=[stored])

    def _token_from_redis(self) -> str | None:
        with redis_errors("reading the token cache"), self._redis.pipeline(transaction=False) as pipe:
            pipe.get(self.key)
            pipe.pttl(self.key)
            value, ttl_ms = pipe.execute()
        if value is None or ttl_ms is None or ttl_ms <= 0:
            return None
        token = self._sealer.unseal(value)
        if token is None:
            # Sealed under a key no longer configured (or not sealed at all): fetch a fresh one.
            return None
        self._local.put(self.key, token, self._clock() + ttl_ms / 1000.0)
        return token

    def _refresh(self) -> str:
        lock = self._redis.lock(f"{self.key}:lock", timeout=self._lock_timeout, blocking_timeout=self._lock_timeout)
        with redis_errors("refreshing a token under the cache's lock"):
            try:
                if not lock.acquire():
                    raise ServiceUnavailable(f"token refresh for {self.key} is stuck behind another process's lock")
                try:
                    return self._token_from_redis() or self._fetch_and_store()
                finally:
                    lock.release()
            # Not a failure of Redis but of the lock's lifetime, so handled here, inside the boundary.
            except redis.exceptions.LockError:
                # The lock expired while we held it (a very slow token endpoint); the token is still good.
                log.warning("token lock %s expired before release", self.key)
                token = self._local.get(self.key, self._clock())
                if token is None:
                    raise ServiceUnavailable(f"token refresh for {self.key} lost its lock") from None
                return token

    def _fetch_and_store(self) -> str:
        fetched = self._fetch()
        # Bounded, the lifetime is at least a second, so the usable part is at least 0.9 s: a valid expiry.
        lifetime = bounded_lifetime(fetched.expires_in, self.key)
        usable = lifetime - refresh_margin(lifetime, self._margin)
        self._redis.set(self.key, self._sealer.seal(fetched.value), px=max(1, int(usable * 1000)))
        self._local.put(self.key, fetched.value, self._clock() + usable)
        log.info("refreshed token %s (valid %.0f s)", self.key, lifetime)
        return fetched.value
