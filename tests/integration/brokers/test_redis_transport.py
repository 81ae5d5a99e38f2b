"""A Redis broker channel used after its connection was collected fails as a lost connection, not a crash.

Celery's consumer collects a failed broker connection (kombu detaches the transport from it) and goes on
with a new one; a task ending afterwards acknowledges on the old channel, and closing that channel again
restores its unacknowledged messages. With kombu's own Redis transport both raise ``AttributeError``
(the worker stopped: "Unrecoverable error"); with the product's they raise a connection error, which
Celery and kombu handle. A private Redis: the test needs nothing else.
"""

from __future__ import annotations

import contextlib
import socket

import pytest
import redis
from kombu import Connection, Exchange, Queue
from kombu.message import Message

from spreports.workers.redis_transport import TRANSPORT, install
from tests.servers import RedisServer

QUEUE = Queue("chaos-docs", Exchange("chaos-docs", type="direct"), routing_key="chaos-docs")


def delivered_then_collected(transport: str) -> tuple[Connection, Message]:
    """A message received and not acknowledged, a BRPOP pending, Redis gone, the connection collected (as
    Celery's consumer does on a broker failure), and the channel's connection pool dropped, as a channel
    close drops it (the next use builds a new pool from the connection's parameters)."""
    server = RedisServer()
    server.start()
    try:
        with Connection(server.url, transport=transport) as producer:
            producer.Producer().publish({"document": 1}, exchange=QUEUE.exchange, routing_key=QUEUE.routing_key,
                                        declare=[QUEUE])  # fmt: skip
        connection = Connection(server.url, transport=transport)
        received: list[Message] = []
        connection.Consumer([QUEUE], callbacks=[lambda body, message: received.append(message)]).consume()
        connection.drain_events(timeout=5)
        with contextlib.suppress(socket.timeout):
            connection.drain_events(timeout=0.1)  # the next BRPOP is now pending on the socket
    finally:
        server.stop()
    connection.collect(socket_timeout=1)
    [message] = received
    # kombu's internals (5.7, as pinned): what a channel looks like after its first close was cut short.
    message.channel._pool = None
    return connection, message


def test_kombus_own_transport_crashes_there() -> None:
    # The failure the product's transport exists for, as kombu itself meets it.
    _, message = delivered_then_collected("kombu.transport.redis:Transport")
    with pytest.raises(AttributeError, match="hostname"):
        message.channel.basic_ack(message.delivery_tag)


def test_an_ack_or_a_close_on_a_collected_channel_is_a_connection_error() -> None:
    connection, message = delivered_then_collected(TRANSPORT)
    channel = message.channel
    with pytest.raises(redis.ConnectionError, match="broker connection was closed") as raised:
        channel.basic_ack(message.delivery_tag)
    assert isinstance(raised.value, channel.connection_errors)  # what kombu's ack_log_error and Celery handle
    # A close that must restore the unacknowledged message again (its first close was cut short): kombu's
    # Connection ignores the connection error, as Celery's reconnection path does.
    channel.closed = False
    channel.qos._delivered.restored = False
    connection.maybe_close_channel(channel)
    assert channel.closed


def test_installed_for_both_redis_schemes() -> None:
    install()
    for url in ("redis://127.0.0.1:6379/0", "rediss://127.0.0.1:6380/0"):
        assert Connection(url).transport_cls in ("redis", "rediss")
        assert Connection(url).get_transport_cls().__module__ == "spreports.workers.redis_transport"
