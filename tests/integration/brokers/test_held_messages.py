"""Messages RabbitMQ holds for good in Celery's delay queues: ``spreports check`` fails on them, the metrics count them.

The held messages are made as RabbitMQ makes them: a message that passed through Celery's delay queues
(dead-lettered on expiry, so stamped with ``x-death``) is sent through the same queues again with those
headers; RabbitMQ takes it for a dead-letter cycle and keeps it, neither ready nor unacknowledged.
The management API (port 15672) is what sees them; the machine's plugin is enabled where it is off.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection, Exchange, Producer, Queue
from kombu.transport.native_delayed_delivery import (
    bind_queue_to_native_delayed_delivery_exchange,
    calculate_routing_key,
    declare_native_delayed_delivery_exchanges_and_queues,
)

from spreports.simulator import Simulator
from spreports.workers.held_messages import held_in_delay_queues
from tests.processes import product_env, wait_for
from tests.rabbitmq import management_problem, private_vhost, rabbitmq_base_url, rabbitmq_problem
from tests.servers import free_port, unavailable

pytestmark = pytest.mark.timeout(180)

DESTINATION = "documents"
# Three seconds: levels 1 and 0. On the second pass level 1 will not dead-letter into level 0, already in the
# message's x-death: the message stays held in level 1.
DELAY_SECONDS = 3


@pytest.fixture(scope="module")
def vhost_url() -> Iterator[str]:
    """A vhost of its own on the machine's RabbitMQ, with its management API answering."""
    base = rabbitmq_base_url()
    problem = rabbitmq_problem(base) or management_problem(base)
    if problem is not None:
        unavailable(problem)
    with private_vhost(base, prefix="spreports-held") as url:
        if url == base:
            unavailable("rabbitmqctl cannot make a vhost of this test's own")
        yield url


def hold(url: str, count: int) -> None:
    """Leave ``count`` messages held in the vhost's delay queues, as a retry carrying x-death leaves them."""
    with Connection(url) as connection:
        declare_native_delayed_delivery_exchanges_and_queues(connection, "quorum")
        queue = Queue(DESTINATION, Exchange(DESTINATION, type="topic"), routing_key=DESTINATION,
                      queue_arguments={"x-queue-type": "quorum"})  # fmt: skip
        queue.bind(connection.channel()).declare()
        bind_queue_to_native_delayed_delivery_exchange(connection, queue)
        producer = Producer(connection.channel())
        route = calculate_routing_key(DELAY_SECONDS, DESTINATION)
        for number in range(count):
            producer.publish({"n": number}, exchange="celery_delayed_27", routing_key=route)
        channel = connection.channel()
        arrived: list[object] = []

        def all_arrived() -> bool:
            message = channel.basic_get(DESTINATION, no_ack=True)
            if message is not None:
                assert "x-death" in message.headers
                arrived.append(message)
            return len(arrived) == count

        wait_for(all_arrived, timeout=60)
        for message in arrived:  # the second pass, dead-letter history and all
            producer.publish({"again": True}, exchange="celery_delayed_27", routing_key=route,
                             headers=dict(message.headers))  # type: ignore[attr-defined]  # fmt: skip


def check_env(url: str, redis_url: str, simulator: Simulator, sqs_queue_url: str, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "cwd").mkdir(exist_ok=True)
    return {
        **simulator.env(),
        "SPREPORTS_BROKER_URL": url,
        "SPREPORTS_REDIS_URL": redis_url,
        "SPREPORTS_SQS__QUEUE_URL": sqs_queue_url,
        "SPREPORTS_SQS__REPORT_TYPES": '["GET_MERCHANT_LISTINGS_ALL_DATA"]',
        "SPREPORTS_STORAGE__URL": str(tmp_path / "reports"),
        "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
    }


def spreports(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", *args],
        env=product_env(env), cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def delay_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stdout.splitlines() if "delay queues:" in line]
    assert len(lines) == 1, result.stdout + result.stderr
    return lines[0]


def test_check_and_metrics_report_the_held_messages(
    vhost_url: str, redis_url: str, simulator: Simulator, sqs_queue_url: str, tmp_path: Path
) -> None:
    env = check_env(vhost_url, redis_url, simulator, sqs_queue_url, tmp_path)
    before = spreports(env, tmp_path / "cwd", "check")
    assert before.returncode == 0, before.stdout + before.stderr
    assert delay_line(before) == "ok    delay queues: no task message held in RabbitMQ's delay queues"

    hold(vhost_url, 3)
    # The management API counts them with its next statistics (every 5 s).
    assert wait_for(lambda: held_in_delay_queues(vhost_url), timeout=60) == {"celery_delayed_1": 3}

    after = spreports(env, tmp_path / "cwd", "check")
    assert after.returncode == 2
    line = delay_line(after)
    assert line.startswith("FAIL  delay queues: 3 task message(s) held for good in RabbitMQ's delay queues")
    assert "(celery_delayed_1: 3)" in line
    assert "spreports: error: 3 task message(s) held" in after.stderr
    assert "guest" not in after.stdout + after.stderr  # the broker's credentials stay out of the lines

    scraped = spreports(env, tmp_path / "cwd", "metrics", "--once")
    assert scraped.returncode == 0, scraped.stderr
    assert "spreports_broker_held_messages 3.0" in scraped.stdout.splitlines()


def test_an_unreachable_management_api_is_a_warning_not_a_failure(
    vhost_url: str, redis_url: str, simulator: Simulator, sqs_queue_url: str, tmp_path: Path
) -> None:
    env = check_env(vhost_url, redis_url, simulator, sqs_queue_url, tmp_path)
    env["SPREPORTS_RABBITMQ_MANAGEMENT_URL"] = f"http://127.0.0.1:{free_port()}"
    result = spreports(env, tmp_path / "cwd", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    line = delay_line(result)
    assert line.startswith("warn  delay queues: not seen: RabbitMQ's management API at http://127.0.0.1:")
    assert "enable the rabbitmq_management plugin" in line
    scraped = spreports(env, tmp_path / "cwd", "metrics", "--once")
    assert "spreports_broker_held_messages" not in scraped.stdout  # unseen is no series, never a 0
