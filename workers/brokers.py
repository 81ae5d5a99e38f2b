"""What differs between the two brokers the fleet runs on: Redis (the default) and RabbitMQ (AMQP).

Either broker carries the tasks only; the product's own state (claims, limits, tokens, dedupe, the
failure ledger, metrics, task results) always lives in a Redis (``SPREPORTS_REDIS_URL``, by default the
broker when it is a Redis). Each queue has an exchange and a routing key of its own name on both.

- Redis: a delivered message stays in kombu's ``unacked`` set until acknowledged; another worker gets a
  dead worker's message back only after the visibility timeout (which every time limit stays under).
- RabbitMQ: quorum queues (replicated, durable), publisher confirms (a publish returns once the broker
  has the message), and a dead worker's unacknowledged message goes back to the queue as soon as its
  connection drops. Countdowns (retries) use Celery's native delayed delivery, which needs the queues'
  exchanges to be topic exchanges; otherwise a waiting task would sit unacknowledged in a worker.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from kombu import Exchange, Queue

from spreports import names
from spreports.settings import AMQP_SCHEMES
from spreports.tasks.retrying import VISIBILITY_TIMEOUT

log = logging.getLogger(__name__)

# Producers raise instead of hanging when the broker is down (kombu's connection retry policy).
CONNECTION_RETRY_OPTIONS: Mapping[str, float] = {"max_retries": 3, "interval_start": 0, "interval_step": 0.5,
                                                 "interval_max": 3}  # fmt: skip
# A worker's AMQP heartbeat: RabbitMQ takes a worker whose host vanished (no FIN, no RST) for dead, and
# hands its task back, after about this long. A killed process's connection drops at once.
AMQP_HEARTBEAT_SECONDS = 30
# RabbitMQ closes the channel of a consumer that holds a delivery unacknowledged longer than its
# consumer timeout (30 min by default); a download may run up to the hard time limit. Honoured as a
# queue argument from RabbitMQ 3.12; older servers need ``consumer_timeout`` in rabbitmq.conf.
CONSUMER_TIMEOUT_MS = VISIBILITY_TIMEOUT * 1000
# Where kombu's Redis transport keeps an exchange's bindings (recent versions also list the ones that
# never expire in a second set), and how it joins a binding's parts.
REDIS_BINDINGS_KEY = "_kombu.binding.{exchange}"
REDIS_PERMANENT_BINDINGS_KEY = "_kombu.binding_permanent.{exchange}"
REDIS_BINDING_SEPARATOR = "\x06\x16"
# Bindings declared by versions before each queue had its own exchange: the documents queue bound to
# the control exchange, which copied every control task into documents.
STALE_REDIS_BINDINGS = ((names.CONTROL_QUEUE, names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE),)


def is_amqp(url: str) -> bool:
    """Whether ``url`` names an AMQP broker (RabbitMQ) rather than a Redis."""
    return urlsplit(url).scheme in AMQP_SCHEMES


def task_queues(amqp: bool) -> list[Queue]:
    """The product's queues, each with an exchange and a routing key of its own name.

    A Queue given only a name is bound to the default exchange and routing key (the control queue's),
    so a message routed by key alone would reach the control queue.
    """
    return [_queue(name, amqp) for name in (names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE, names.DATA_QUEUE)]


def _queue(name: str, amqp: bool) -> Queue:
    if not amqp:
        return Queue(name, Exchange(name, type="direct"), routing_key=name)
    arguments = {"x-queue-type": "quorum", "x-consumer-timeout": CONSUMER_TIMEOUT_MS}
    return Queue(name, Exchange(name, type="topic"), routing_key=name, queue_arguments=arguments)


def broker_config(amqp: bool) -> dict[str, Any]:
    """The Celery settings that depend on the broker."""
    if amqp:
        return {
            "broker_transport_options": {**CONNECTION_RETRY_OPTIONS, "confirm_publish": True},
            "broker_heartbeat": AMQP_HEARTBEAT_SECONDS,
            # Queues Celery creates on its own (a queue named at send time) are quorum queues too.
            "task_default_queue_type": "quorum",
            "task_default_exchange_type": "topic",
        }
    return {
        "broker_transport_options": {**CONNECTION_RETRY_OPTIONS, "visibility_timeout": VISIBILITY_TIMEOUT},
        "visibility_timeout": VISIBILITY_TIMEOUT,
    }


def declare_amqp_queues(app: Any) -> None:
    """Declare every queue of the product, with its exchange and binding, on the app's AMQP broker.

    A worker binds every queue of the app to RabbitMQ's delayed-delivery exchanges as it starts, and one
    missing exchange fails them all: countdowns would then never come back. A worker that consumes some
    queues only (``-Q documents``) declares the others here first, so that their exchanges exist.
    """
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        for queue in app.amqp.queues.values():
            queue.bind(channel).declare()


def drop_stale_redis_bindings(client: Any) -> int:
    """Remove the bindings older versions left in the Redis broker; return how many were there (idempotent).

    ``client`` is a redis-py client on the broker's Redis.
    """
    removed = 0
    for exchange, routing_key, queue in STALE_REDIS_BINDINGS:
        member = REDIS_BINDING_SEPARATOR.join((routing_key, "", queue))
        removed += int(client.srem(REDIS_BINDINGS_KEY.format(exchange=exchange), member))
        client.srem(REDIS_PERMANENT_BINDINGS_KEY.format(exchange=exchange), member)
    if removed:
        log.info("removed %d stale queue binding(s) left by an older version", removed)
    return removed


def amqp_depth_reader(url: str, queues: Sequence[str]) -> Callable[[], dict[str, int]]:
    """A function reading the queues' depths from the AMQP broker at ``url``, on a new connection each time.

    One connection per read: a metrics scrape comes every few seconds at most, and a dropped
    connection never outlives the scrape that met it.
    """

    def read() -> dict[str, int]:
        from kombu import Connection

        with Connection(url, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
            return amqp_queue_depths(connection, queues)

    return read


def amqp_queue_depths(connection: Any, queues: Sequence[str]) -> dict[str, int]:
    """Messages ready in each queue of an AMQP broker (a passive declare: nothing is created).

    ``connection`` is a kombu connection; a queue that does not exist yet is left out.
    """
    from amqp.exceptions import NotFound

    depths: dict[str, int] = {}
    for name in queues:
        # A passive declare of a missing queue closes the channel: one channel per queue.
        channel = connection.channel()
        try:
            depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
        except NotFound:
            continue
        finally:
            with contextlib.suppress(Exception):
                channel.close()
    return depths
