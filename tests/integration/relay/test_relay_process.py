"""The relay as a real process (``python -m spreports.workers.relay``): Celery messages in Redis, signals, Redis outages.

Every test counts what reaches the broker's ``documents`` list, decoded as Celery messages: each valid
notification must be there (exactly once when the relay is stopped gracefully).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from spreports import names
from tests.integration.relay.conftest import queue_counts, send, wait_until
from tests.servers import RedisServer, free_port
from tests.unit.relay.messages import APPLICATION_ID, BAD_BODIES, body, notification


def relay_env(
    broker: str, queue_url: str, data_dir: Path, visibility_timeout: int = 30, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPREPORTS_")}
    env.update(
        {
            "SPREPORTS_BROKER_URL": broker,
            "SPREPORTS_DATA_DIR": str(data_dir),
            "SPREPORTS_SQS__QUEUE_URL": queue_url,
            "SPREPORTS_SQS__WAIT_TIME_SECONDS": "1",
            # Far longer than a loaded machine stalls a receiver: a message must not reappear while in hand.
            "SPREPORTS_SQS__VISIBILITY_TIMEOUT": str(visibility_timeout),
            **extra,
        }
    )
    return env


class RelayProcess:
    """``python -m spreports.workers.relay`` with its output in a log file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RelayProcess:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "spreports.workers.relay"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    def signal(self, sig: int) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(timeout=60)

    def check(self) -> int:
        args = [sys.executable, "-m", "spreports.workers.relay", "--check"]
        return subprocess.run(args, env=self.env, capture_output=True, timeout=60, check=False).returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def relays(tmp_path: Path) -> Iterator[list[RelayProcess]]:
    started: list[RelayProcess] = []
    yield started
    for relay in started:
        if relay.process is not None and relay.process.poll() is None:
            relay.process.kill()
            relay.process.wait()


def published(client: redis.Redis) -> list[dict[str, Any]]:
    """The Celery messages waiting on the ``documents`` queue: headers plus kwargs."""
    messages = []
    for raw in client.lrange(names.DOCUMENTS_QUEUE, 0, -1):
        envelope = json.loads(raw)
        _, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
        messages.append({"task": envelope["headers"]["task"], "id": envelope["headers"]["id"], "kwargs": kwargs})
    return messages


def relayed_ids(client: redis.Redis) -> list[str]:
    return [m["kwargs"]["notification_id"] for m in published(client)]


def test_relays_into_celery_checks_health_and_stops_on_sigterm(
    redis_url: str, redis_client: redis.Redis, sqs: Any, sqs_queue_url: str, dlq_url: str, tmp_path: Path, relays: Any
) -> None:
    port = free_port()
    env = relay_env(
        redis_url, sqs_queue_url, tmp_path, SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL=dlq_url,
        SPREPORTS_SQS__METRICS_PORT=str(port), SPREPORTS_SQS__RECEIVERS="3", SPREPORTS_SQS__APPLICATION_ID=APPLICATION_ID,
    )  # fmt: skip
    relay = RelayProcess(env, tmp_path / "relay.log")
    relays.append(relay)
    assert relay.check() == 1
    data = notification(notification_id="n-proc")
    send(sqs, sqs_queue_url, [body(data), *BAD_BODIES.values()])
    relay.start()
    wait_until(lambda: relayed_ids(redis_client) == ["n-proc"], what="the task in Redis")
    [message] = published(redis_client)
    assert message["task"] == names.RETRIEVE_REPORT_DOCUMENT
    assert message["id"] == "notification-n-proc"
    report = data["payload"]["reportProcessingFinishedNotification"]
    assert message["kwargs"] == {
        "seller_id": report["sellerId"],
        "report_document_id": report["reportDocumentId"],
        "report_id": report["reportId"],
        "report_type": report["reportType"],
        "processing_status": "DONE",
        "notification_id": "n-proc",
    }
    wait_until(lambda: queue_counts(sqs, dlq_url)[0] == len(BAD_BODIES), what="bad messages in the DLQ")
    wait_until(lambda: relay.check() == 0, what="a fresh heartbeat")
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert "spreports_relay_relayed_total 1.0" in metrics
    assert f"spreports_relay_dead_lettered_total {float(len(BAD_BODIES))}" in metrics
    assert relay.signal(signal.SIGTERM) == 0
    assert relay.check() == 1, "a stopped relay must not look alive"
    assert "Traceback" not in relay.output()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopped_mid_batch_loses_nothing(
    redis_url: str, redis_client: redis.Redis, sqs: Any, sqs_queue_url: str, tmp_path: Path, relays: Any, sig: int
) -> None:
    # Enough for a stop well before the end (the first relay is stopped at its first tasks, with at most
    # one batch of ten per receiver in hand), and no more: relaying each costs moto's server CPU.
    ids = [f"n-{i}" for i in range(200)]
    send(sqs, sqs_queue_url, [body(notification(notification_id=i)) for i in ids])
    # What a killed relay held reappears after the visibility timeout (and its claims lapse with it), in
    # flight again once more if a copy comes back while its claim still holds: the test waits up to twice
    # this. Still far longer than a loaded machine stalls a receiver; a stop with SIGTERM leaves nothing
    # in flight and keeps the usual 30 s.
    visibility = 6 if sig == signal.SIGKILL else 30
    env = relay_env(redis_url, sqs_queue_url, tmp_path, visibility, SPREPORTS_SQS__RECEIVERS="2")
    first = RelayProcess(env, tmp_path / "relay-1.log").start()
    relays.append(first)
    wait_until(lambda: redis_client.llen(names.DOCUMENTS_QUEUE) > 0, what="the first tasks")
    code = first.signal(sig)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    stopped_at = redis_client.llen(names.DOCUMENTS_QUEUE)
    second = RelayProcess(env, tmp_path / "relay-2.log").start()
    relays.append(second)
    # Decoding the whole list costs CPU that moto's server (in this process) needs: only once it can hold them all.
    wait_until(
        lambda: redis_client.llen(names.DOCUMENTS_QUEUE) >= len(ids) and set(relayed_ids(redis_client)) == set(ids),
        timeout=180,
        what="every notification relayed",
    )
    wait_until(lambda: queue_counts(sqs, sqs_queue_url) == (0, 0), timeout=60, what="an empty queue")
    counts = Counter(relayed_ids(redis_client))
    if sig == signal.SIGTERM:
        # A graceful stop finishes the batch in hand: nothing is published twice.
        assert max(counts.values()) == 1
    else:
        # A kill may republish what was published but not yet marked (at most one batch per receiver).
        assert sum(counts.values()) - len(ids) <= 2 * 10
    assert 0 < stopped_at < len(ids) or sig == signal.SIGKILL


def test_redis_outage_stops_deleting_and_resumes(sqs: Any, sqs_queue_url: str, tmp_path: Path, relays: Any) -> None:
    server = RedisServer()
    server.start()
    try:
        client = redis.Redis.from_url(server.url)
        # The messages in hand when Redis went away come back after the visibility timeout: 10 s, not 30.
        env = relay_env(server.url, sqs_queue_url, tmp_path, visibility_timeout=10)
        relay = RelayProcess(env, tmp_path / "relay.log").start()
        relays.append(relay)
        send(sqs, sqs_queue_url, [body(notification(notification_id=f"before-{i}")) for i in range(5)])
        wait_until(lambda: len(relayed_ids(client)) == 5, what="tasks before the outage")
        # A task is in the broker (published) before its message is marked and deleted: wait for the
        # deletes too, or the outage may hit that window and keep those five, as it is meant to.
        wait_until(lambda: queue_counts(sqs, sqs_queue_url) == (0, 0), what="the messages before the outage deleted")
        server.stop()
        after = [f"during-{i}" for i in range(15)]
        send(sqs, sqs_queue_url, [body(notification(notification_id=i)) for i in after])
        # The relay sees the outage and keeps every message (visible or in flight, never deleted).
        wait_until(lambda: "Redis unavailable" in relay.output(), what="the outage noticed")
        assert sum(queue_counts(sqs, sqs_queue_url)) == 15
        server.start()
        wait_until(lambda: sorted(relayed_ids(client)) == sorted(after), timeout=120, what="tasks after the outage")
        wait_until(lambda: queue_counts(sqs, sqs_queue_url) == (0, 0), what="an empty queue")
        assert relay.process is not None and relay.process.poll() is None, "the relay must survive the outage"
        assert relay.signal(signal.SIGTERM) == 0
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("queue", "expected"),
    [
        (None, "SPREPORTS_SQS__QUEUE_URL: the relay needs"),
        ("missing", "SPREPORTS_SQS__QUEUE_URL: the queue cannot be reached"),
    ],
)
def test_a_relay_that_cannot_start_says_why_in_one_line(
    redis_url: str, aws_endpoint: str, tmp_path: Path, queue: str | None, expected: str
) -> None:
    env = relay_env(redis_url, f"{aws_endpoint}/123456789012/does-not-exist", tmp_path)
    if queue is None:
        del env["SPREPORTS_SQS__QUEUE_URL"]
    result = subprocess.run(
        [sys.executable, "-m", "spreports.workers.relay"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"spreports: error: {expected}")
    assert "Traceback" not in result.stderr


def test_metrics_beyond_loopback_need_a_login(redis_url: str, sqs_queue_url: str, tmp_path: Path, relays: Any) -> None:
    port = free_port()
    public = relay_env(redis_url, sqs_queue_url, tmp_path, SPREPORTS_SQS__METRICS_PORT=str(port),
                       SPREPORTS_SQS__METRICS_HOST="0.0.0.0")  # fmt: skip
    refused = subprocess.run([sys.executable, "-m", "spreports.workers.relay"], env=public, capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
    assert refused.returncode == 2, refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert "SPREPORTS_SQS__METRICS_HOST" in line and "SPREPORTS_METRICS_BASIC_AUTH" in line

    relay = RelayProcess({**public, "SPREPORTS_METRICS_BASIC_AUTH": "prometheus:a-real-s3cret"}, tmp_path / "relay.log")
    relays.append(relay)
    relay.start()
    url = f"http://127.0.0.1:{port}/metrics"

    def answer(login: str | None) -> int:
        request = urllib.request.Request(url)
        if login is not None:
            request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            return 0  # not serving yet

    wait_until(lambda: answer(None) == 401, what="the relay's metrics asking for a login")
    assert answer("prometheus:wrong") == 401
    assert answer("prometheus:a-real-s3cret") == 200
    assert relay.signal(signal.SIGTERM) == 0
