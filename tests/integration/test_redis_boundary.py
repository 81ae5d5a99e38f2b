"""The Redis boundary against a real redis-server: what the server answers becomes the same product error at
every site, and no message holds a key or a password."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from spreports import keys
from spreports.connection import ping
from spreports.errors import RedisUnavailable, UnexpectedResponse
from spreports.reports.failure_ledger import FailureLedger
from spreports.reports.fatal_ledger import FatalLedger
from tests.servers import RedisServer, redis_server

PASSWORD = "boundary-s3cret"


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A private server: the tests turn it into a replica and give it a password."""
    with redis_server() as private:
        yield private


@pytest.fixture
def client(server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(server.url)
    client.flushdb()
    yield client
    client.replicaof("NO", "ONE")
    client.close()


def test_a_key_of_another_type_is_a_permanent_refusal_that_names_no_key(client: redis.Redis) -> None:
    client.set(keys.FAILURE_LEDGER.prefix, "written by something else")
    with pytest.raises(UnexpectedResponse) as raised:
        FailureLedger(client).count()
    message = str(raised.value)
    assert message == "Redis refused the command: WRONGTYPE (ResponseError; counting the failure ledger)"


def test_a_replica_refusing_writes_is_transient(client: redis.Redis) -> None:
    # A replica of a server that is not there: it answers reads and refuses writes, as after a failover.
    client.replicaof("127.0.0.1", "1")
    with pytest.raises(RedisUnavailable) as raised:
        FatalLedger(client).record("S", "R1", "GET_X", "a reason")
    assert str(raised.value) == "Redis cannot serve now: READONLY (ReadOnlyError; counting a FATAL report)"
    assert FatalLedger(client).recorded("S", "R1") is False  # reads still pass


def test_a_wrong_password_does_not_answer_and_is_never_shown(server: RedisServer, client: redis.Redis) -> None:
    client.config_set("requirepass", PASSWORD)
    try:
        wrong = server.url.replace("redis://", "redis://:not-the-password@")
        with pytest.raises(RedisUnavailable) as raised:
            ping(wrong)
        assert str(raised.value) == (
            f"Redis at redis://127.0.0.1:{server.port} does not answer: AuthenticationError (pinging it)"
        )
        ping(server.url.replace("redis://", f"redis://:{PASSWORD}@"))
    finally:
        redis.Redis.from_url(server.url, password=PASSWORD).config_set("requirepass", "")
