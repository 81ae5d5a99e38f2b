"""Producers (``spreports.enqueue_document`` and friends) hold a constant handful of Redis connections
however many calls they make, and fail within seconds, in one line, when Redis does not answer.

The connections are counted by the Redis server itself (``CLIENT LIST``) on a private server of the
test's own, so that no other client of a shared server is counted; the producer is a program of its own
(a subprocess), configured from the environment as a user's web application is.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from spreports.errors import RedisUnavailable
from spreports.settings import Settings
from tests.processes import product_env
from tests.servers import free_port, redis_server

CALLS = 10_000
THREADS = 8

# The producer program: enqueue_document without settings=, CALLS times in one thread, then from
# THREADS threads at once, then request_report and backfill_reports; it reports after each phase and
# waits for a line on stdin before it goes on, so that the test counts the connections it holds.
PRODUCER = f"""
import sys, threading
from datetime import date
import spreports

def phase(name):
    print(name, flush=True)
    sys.stdin.readline()

results = [spreports.enqueue_document(f"amzn1.tortuga.4.na.{{n:08d}}") for n in range({CALLS})]
phase("sequential")

def send(first):
    for n in range(first, first + 200):
        results.append(spreports.enqueue_document(f"amzn1.tortuga.4.na.{{n:08d}}"))

threads = [threading.Thread(target=send, args=(t * 1000,)) for t in range({THREADS})]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
phase("threads")

for n in range(200):
    results.append(spreports.request_report("GET_MERCHANT_LISTINGS_ALL_DATA", marketplace_ids=["ATVPDKIKX0DER"]))
    results.append(spreports.backfill_reports("GET_MERCHANT_LISTINGS_ALL_DATA", date(2026, 1, 1), date(2026, 1, 2),
                                              marketplace_ids=["ATVPDKIKX0DER"]))
phase("requests")
"""


def clients(client: redis.Redis) -> list[dict[str, object]]:
    """The server's own list of its client connections, without the one asking."""
    me = client.client_id()
    return [entry for entry in client.client_list() if entry["id"] != str(me)]


def test_ten_thousand_producer_calls_hold_a_constant_handful_of_connections(tmp_path: Path) -> None:
    with redis_server() as server:
        counter = redis.Redis.from_url(server.url)
        env = product_env({"SPREPORTS_BROKER_URL": server.url, "SPREPORTS_SELLER_ID": "A1PRODUCERS"})
        producer = subprocess.Popen(
            [sys.executable, "-c", PRODUCER], env=env, cwd=tmp_path, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert producer.stdin is not None and producer.stdout is not None
        held = {}
        try:
            for phase in ("sequential", "threads", "requests"):
                line = producer.stdout.readline().strip()
                assert line == phase, f"producer said {line!r}; stderr:\n{producer.stderr.read() if line == '' else ''}"
                held[phase] = len(clients(counter))
                producer.stdin.write("\n")
                producer.stdin.flush()
            assert producer.wait(timeout=60) == 0
        finally:
            if producer.poll() is None:
                producer.kill()
                producer.wait()
        queued = counter.llen("documents")
        print(json.dumps({"connections": held, "queued_documents": queued}))
        assert queued == CALLS + THREADS * 200
        # One pooled broker connection, one result subscription, one result-store connection.
        assert held["sequential"] <= 4, held
        # Threads share the app and its one result subscription; the broker's producer pool holds a
        # connection or two per thread sending at that moment, never one per call.
        assert held["threads"] <= 2 * THREADS + 2, held
        assert held["requests"] <= held["threads"], held


def test_equal_settings_share_one_app(redis_url: str, tmp_path: Path) -> None:
    from spreports.workers.producers import app_for

    def settings() -> Settings:
        return Settings(broker_url=redis_url, data_dir=tmp_path / "data")

    assert app_for(settings()) is app_for(settings())
    assert app_for(Settings(broker_url=redis_url, data_dir=tmp_path / "other")) is not app_for(settings())


#: Within seconds, not minutes: Celery's own defaults keep retrying a broker it cannot reach. The
#: producers give up after a 2 s connect timeout and two quick retries; the bounds are hang guards that
#: a busy machine stays well within, not speed claims.
GIVE_UP_BOUND_SECONDS = 30.0
PROCESS_START_BOUND_SECONDS = 30.0  # a command line's start-up on a busy machine


@pytest.fixture
def dead_redis() -> str:
    """A Redis URL of a port nobody listens on, with a password that must never be shown."""
    return f"redis://:producer-secret@127.0.0.1:{free_port()}/0"


def test_enqueue_document_with_redis_down_fails_within_seconds_in_one_line(dead_redis: str, tmp_path: Path) -> None:
    from spreports.workers.producers import enqueue_document

    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as raised:
        enqueue_document("amzn1.tortuga.4.na.D1", seller_id="A1", settings=Settings(broker_url=dead_redis))
    assert time.monotonic() - started < GIVE_UP_BOUND_SECONDS
    message = str(raised.value)
    assert message.startswith(f"Redis at redis://127.0.0.1:{dead_redis.rsplit(':', 1)[1].split('/')[0]} does not")
    assert "\n" not in message and "producer-secret" not in message


def test_a_producer_whose_redis_goes_away_fails_within_seconds(tmp_path: Path) -> None:
    from spreports.workers.producers import enqueue_document

    with redis_server() as server:
        settings = Settings(broker_url=server.url, data_dir=tmp_path / "data")
        enqueue_document("amzn1.tortuga.4.na.D1", seller_id="A1", settings=settings)
        server.stop()
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            enqueue_document("amzn1.tortuga.4.na.D2", seller_id="A1", settings=settings)
        assert time.monotonic() - started < GIVE_UP_BOUND_SECONDS


def test_reports_request_with_redis_gone_is_one_line_within_seconds(dead_redis: str, tmp_path: Path) -> None:
    env = product_env({"SPREPORTS_BROKER_URL": dead_redis, "SPREPORTS_SELLER_ID": "A1"})
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "spreports.workers.cli", "reports", "request", "--type", "GET_MERCHANT_LISTINGS_ALL_DATA",
         "--marketplace", "ATVPDKIKX0DER"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert time.monotonic() - started < GIVE_UP_BOUND_SECONDS + PROCESS_START_BOUND_SECONDS
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("spreports: error: Redis at redis://127.0.0.1:") and "producer-secret" not in line
