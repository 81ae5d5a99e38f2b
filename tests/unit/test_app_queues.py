"""The Celery app's queues: each bound to its own exchange and routing key."""

from __future__ import annotations

from spreports import names
from spreports.settings import Settings
from spreports.workers.app import create_app


def test_each_queue_has_its_own_exchange_and_routing_key() -> None:
    app = create_app(Settings(_env_file=None, broker_url="redis://127.0.0.1:1/0"))
    queues = app.amqp.queues
    for name in (names.CONTROL_QUEUE, names.DOCUMENTS_QUEUE):
        assert queues[name].exchange.name == name
        assert queues[name].routing_key == name
    # A message for the control queue's exchange and key reaches the control queue only.
    bound = [q.name for q in queues.values() if (q.exchange.name, q.routing_key) == ("control", "control")]
    assert bound == [names.CONTROL_QUEUE]
    route = app.amqp.router.route({}, names.RETRIEVE_REPORT_DOCUMENT)
    assert route["queue"].name == names.DOCUMENTS_QUEUE
    assert route["queue"].exchange.name == names.DOCUMENTS_QUEUE
