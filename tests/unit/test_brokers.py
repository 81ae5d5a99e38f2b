"""The two brokers: which URL serves what, and the Celery configuration each one gets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from spreports import names
from spreports.settings import Settings
from spreports.workers.app import celery_config
from spreports.workers.brokers import REDIS_BINDING_SEPARATOR, drop_stale_redis_bindings

AMQP = "amqp://user:pw@rabbitmq:5672//"
REDIS = "redis://redis:6379/0"


def test_an_amqp_broker_needs_a_state_redis_and_says_which_setting() -> None:
    with pytest.raises(ValidationError, match="SPREPORTS_REDIS_URL: required with an AMQP broker"):
        Settings(_env_file=None, broker_url=AMQP)


@pytest.mark.parametrize(
    ("broker", "redis", "state"),
    [
        (REDIS, None, REDIS),  # the broker's Redis holds the state too, as before
        (REDIS, "redis://state:6379/1", "redis://state:6379/1"),
        (AMQP, REDIS, REDIS),
        ("amqps://user:pw@rabbitmq:5671//", REDIS, REDIS),
        (None, None, None),  # the embedded Redis
        (None, REDIS, REDIS),
    ],
)
def test_the_state_redis_of_each_combination(broker: str | None, redis: str | None, state: str | None) -> None:
    settings = Settings(_env_file=None, broker_url=broker, redis_url=redis)
    assert settings.state_redis_url == state
    assert settings.broker_is_amqp == (broker is not None and broker.startswith("amqp"))


def test_rabbitmq_gets_quorum_queues_on_topic_exchanges_with_confirms_and_late_acks() -> None:
    config = celery_config(Settings(_env_file=None, broker_url=AMQP, redis_url=REDIS))
    assert config["broker_url"] == AMQP
    assert config["result_backend"] == REDIS  # results in the state Redis, never in RabbitMQ
    assert config["broker_transport_options"]["confirm_publish"] is True
    assert "visibility_timeout" not in config["broker_transport_options"]
    assert "visibility_timeout" not in config
    assert config["task_acks_late"] is True
    assert config["task_reject_on_worker_lost"] is True
    assert config["worker_prefetch_multiplier"] == 1
    queues = {queue.name: queue for queue in config["task_queues"]}
    assert set(queues) == {names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE, names.DATA_QUEUE}
    for name, queue in queues.items():
        # Topic exchanges: Celery's native delayed delivery (countdowns) routes only through them.
        assert (queue.exchange.name, queue.exchange.type, queue.routing_key) == (name, "topic", name)
        assert queue.queue_arguments["x-queue-type"] == "quorum"


def test_redis_keeps_its_visibility_timeout_and_direct_exchanges() -> None:
    config = celery_config(Settings(_env_file=None, broker_url=REDIS))
    assert config["result_backend"] == REDIS
    assert config["broker_transport_options"]["visibility_timeout"] == config["visibility_timeout"]
    assert "confirm_publish" not in config["broker_transport_options"]
    for queue in config["task_queues"]:
        assert (queue.exchange.type, queue.queue_arguments) == ("direct", None)


class Bindings:
    """The one Redis command the clean-up sends, over a dict of sets."""

    def __init__(self, sets: dict[str, set[str]]) -> None:
        self.sets = sets

    def srem(self, key: str, member: str) -> int:
        members = self.sets.get(key, set())
        found = member in members
        members.discard(member)
        return int(found)


def test_the_stale_documents_binding_on_the_control_exchange_is_removed_once() -> None:
    stale = REDIS_BINDING_SEPARATOR.join(("control", "", "documents"))
    current = REDIS_BINDING_SEPARATOR.join(("control", "", "control"))
    bindings = Bindings({"_kombu.binding.control": {stale, current}, "_kombu.binding_permanent.control": {stale}})
    assert drop_stale_redis_bindings(bindings) == 1
    assert drop_stale_redis_bindings(bindings) == 0
    assert bindings.sets == {"_kombu.binding.control": {current}, "_kombu.binding_permanent.control": set()}
