"""The document claim with redis-py's own error path: nothing listens where Redis should be."""

from __future__ import annotations

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from spreports.documents import DocumentClaim
from spreports.errors import ServiceUnavailable


def test_redis_down_is_transient_for_acquire_and_renew_and_harmless_for_release() -> None:
    # redis-py retries a refused connection (by default ten times with backoff, ~15 s for the four calls
    # below); one retry without backoff takes the same path and raises the same error at once.
    client = redis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 1)
    )  # nothing listens there
    claim = DocumentClaim(client, "S", "D", owner="run-1", ttl=60)
    with pytest.raises(ServiceUnavailable, match="Redis does not answer"):
        claim.acquire()
    with pytest.raises(ServiceUnavailable, match="Redis does not answer"):
        claim.renew()
    claim.release()
    assert claim.remaining() == 0
