"""What the SQS relay did (counters, exported for Prometheus) and whether it lives (a heartbeat in Redis).

Counters are per process; Prometheus sums the processes. The heartbeat is one Redis key per relay
process (``spreports:relay:heartbeat:<host>:<pid>``) whose TTL does the expiring: a key that exists is a
fresh heartbeat, so ``spreports relay --check`` compares no clocks.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

import redis
from prometheus_client import CollectorRegistry, Counter

from spreports import keys
from spreports.errors import SettingsError
from spreports.redis_errors import redis_errors

HEARTBEAT_PREFIX = keys.RELAY_HEARTBEAT.prefix

COUNTERS: dict[str, str] = {
    "received": "SQS messages received",
    "relayed": "retrieval tasks published",
    "duplicates": "messages deleted as duplicates of a notification already relayed",
    "cancelled": "CANCELLED reports recorded (no task)",
    "skipped": "reports of a type nobody asked for (SPREPORTS_SQS__REPORT_TYPES), deleted without a task",
    "no_document": "FATAL reports without a document (no task)",
    "invalid": "messages that are not a usable notification of ours (counted at each receive)",
    "dead_lettered": "invalid messages moved to SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL",
}


class RelayCounters:
    """Thread-safe counts of what the relay did, mirrored into Prometheus counters on their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._exported = {
            name: Counter(f"spreports_relay_{name}", help_text, registry=self.registry)
            for name, help_text in COUNTERS.items()
        }

    def add(self, name: str, amount: int = 1) -> None:
        """Count ``amount`` more of ``name`` (one of :data:`COUNTERS`)."""
        if amount <= 0:
            return
        with self._lock:
            self._counts[name] += amount
        self._exported[name].inc(amount)

    def snapshot(self) -> dict[str, int]:
        """The counts so far."""
        with self._lock:
            return dict(self._counts)


def serve_metrics(
    counters: RelayCounters, port: int, host: str = "127.0.0.1", login: tuple[str, str] | None = None
) -> Any:
    """Serve ``/metrics`` for Prometheus on ``host:port`` (behind ``login`` when given); returns the server.

    A port that cannot be had (another relay of this host has it) is a :class:`SettingsError`.
    """
    from prometheus_client import make_wsgi_app

    from spreports.workers.metrics_server import require_login, serve

    app = make_wsgi_app(counters.registry)
    if login is not None:
        app = require_login(app, *login)
    try:
        return serve(app, host, port)
    except OSError as exc:
        raise SettingsError(
            f"SPREPORTS_SQS__METRICS_PORT: cannot serve metrics on {host}:{port} ({exc.strerror or exc}); "
            "another process (a second relay on this host?) has it: give each relay its own port"
        ) from None


def this_host() -> str:
    """The host name a heartbeat is filed under (the container's hostname in Docker)."""
    return socket.gethostname()


class Heartbeat:
    """One relay process's liveness key in Redis, rewritten while the process is healthy."""

    def __init__(
        self, client: redis.Redis, *, ttl_seconds: int, host: str | None = None, pid: int | None = None
    ) -> None:
        self.client = client
        self.ttl_seconds = max(1, ttl_seconds)
        self.host = host or this_host()
        self.pid = pid or os.getpid()
        self.key = f"{HEARTBEAT_PREFIX}{self.host}:{self.pid}"

    @redis_errors("writing the relay's heartbeat")
    def beat(self, counters: Mapping[str, int]) -> None:
        """Record that the relay is alive now, with its counters."""
        value = {"host": self.host, "pid": self.pid, "time": time.time(), "counters": dict(counters)}
        self.client.set(self.key, json.dumps(value), ex=self.ttl_seconds)

    @redis_errors("removing the relay's heartbeat")
    def clear(self) -> None:
        """Remove the key at a clean exit, so a stopped relay is not reported alive."""
        self.client.delete(self.key)


@redis_errors("reading the relays' heartbeats")
def fresh_heartbeats(client: redis.Redis, *, host: str | None = None) -> list[dict[str, Any]]:
    """The live relays' heartbeats (of one host, or of all hosts when ``host`` is None)."""
    pattern = f"{HEARTBEAT_PREFIX}{host or '*'}:*"
    beats = []
    for key in client.scan_iter(match=pattern, count=100):
        raw = client.get(key)
        if raw is None:  # expired between SCAN and GET
            continue
        try:
            beats.append(json.loads(raw))
        except ValueError:
            continue
    return beats
