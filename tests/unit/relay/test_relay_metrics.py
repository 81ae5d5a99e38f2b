"""Relay counters (exported for Prometheus) and the heartbeat that ``spreports relay --check`` reads."""

from __future__ import annotations

import threading

import fakeredis
from prometheus_client import generate_latest

from spreports.workers.relay.metrics import COUNTERS, Heartbeat, RelayCounters, fresh_heartbeats


def test_counters_are_thread_safe_and_exported() -> None:
    counters = RelayCounters()

    def work() -> None:
        for _ in range(1000):
            counters.add("received")
            counters.add("relayed", 2)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counters.add("duplicates", 0)
    snapshot = counters.snapshot()
    assert snapshot["received"] == 4000 and snapshot["relayed"] == 8000 and snapshot["duplicates"] == 0
    assert set(snapshot) == set(COUNTERS)
    exported = generate_latest(counters.registry).decode()
    assert "spreports_relay_received_total 4000.0" in exported
    assert "spreports_relay_dead_lettered_total 0.0" in exported
    # Two relays in one process (tests, benchmarks) do not collide: each has its own registry.
    assert RelayCounters().snapshot()["received"] == 0


def test_heartbeat_is_fresh_until_its_ttl_and_cleared_at_exit() -> None:
    client = fakeredis.FakeRedis()
    beat = Heartbeat(client, ttl_seconds=30, host="box-1", pid=11)
    other_host = Heartbeat(client, ttl_seconds=30, host="box-2", pid=12)
    assert fresh_heartbeats(client, host="box-1") == []
    beat.beat({"relayed": 3})
    other_host.beat({"relayed": 1})
    [mine] = fresh_heartbeats(client, host="box-1")
    assert mine["counters"] == {"relayed": 3} and mine["pid"] == 11
    assert 0 < client.ttl(beat.key) <= 30
    assert len(fresh_heartbeats(client)) == 2
    beat.clear()
    assert fresh_heartbeats(client, host="box-1") == []


def test_an_expired_heartbeat_is_not_fresh() -> None:
    client = fakeredis.FakeRedis()
    beat = Heartbeat(client, ttl_seconds=30, host="box-1", pid=11)
    beat.beat({})
    client.expire(beat.key, 0)  # what the TTL does when the relay stops beating
    assert fresh_heartbeats(client, host="box-1") == []
