"""What the fleet's workers did and what waits, as Prometheus metrics kept in Redis.

Workers run on many hosts, each with several (prefork) processes that start and end on their own, so
counters kept in a process would be lost with it and would need one scrape target per process. The
workers instead add to a few Redis hashes:

- ``spreports:metrics:counters``: one field per counter and label value (``documents:stored``,
  ``failures:ServiceUnavailable``, ``bytes_in``...), with ``HINCRBY``;
- ``spreports:metrics:document_seconds``: a histogram, one field per bucket (``bin:60.0``: the documents
  that took more than the bucket below and at most 60 s) and ``sum``; the exporter adds the buckets up
  into Prometheus' cumulative ones and the count. (Older versions wrote the cumulative ``le:`` fields
  and ``count`` themselves; the exporter adds those in too, so totals survive an upgrade.)

Within a task the additions are held and written in one round trip when it ends (:func:`open_batch`,
:func:`close_batch`, called by the worker around each task), or sooner once they are
:data:`BATCH_MAX_SECONDS` old, so that byte rates show while a large document downloads. A small
document's counters cost one round trip of about five commands; a worker killed mid-task loses the
additions of that task not yet written (at most that many seconds of its bytes; its outcome was not
counted yet anyway).

One exporter (``spreports metrics``, anywhere that reaches the broker's Redis) turns them into the
fleet's totals at each scrape (:class:`FleetCollector`), with gauges read from Redis at the same
moment: the depth of each queue (the broker's Redis lists), the messages workers hold unacknowledged,
the documents in flight, the failure ledger's size and the FATAL counters per report type. Totals
survive worker restarts; they reset only with the Redis data (Prometheus' ``rate()`` absorbs a reset).

Recording never fails a task: a Redis error while counting is logged at debug level and dropped.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
import requests
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from spreports import keys
from spreports.documents.inflight import INFLIGHT_KEY
from spreports.redis_errors import FAILURES, redis_errors
from spreports.reports.failure_ledger import LEDGER_KEY
from spreports.reports.fatal_ledger import KEY_PREFIX as FATAL_PREFIX
from spreports.reports.fatal_ledger import REPORT_PREFIX as FATAL_REPORT_PREFIX

log = logging.getLogger(__name__)

COUNTERS_KEY = keys.METRICS_COUNTERS.prefix
SECONDS_KEY = keys.METRICS_SECONDS.prefix
#: Upper bounds (seconds) of the retrieval-time histogram: from small documents to the 40-minute limit.
SECONDS_BUCKETS: tuple[float, ...] = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 2400, math.inf)
#: Where kombu's Redis transport keeps a queue's messages: the queue's name for priority 0, then one
#: list per priority step (``<queue>\x06\x16<step>``, steps 3, 6, 9 by default).
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED_KEY = "unacked"
PREFIX = "spreports_"
#: Additions held in a task's batch are written once they are this old, at the next addition.
BATCH_MAX_SECONDS = 2.0


@dataclass(frozen=True)
class CounterSpec:
    """One exported counter: its name (without ``spreports_`` and ``_total``), help, and label if any."""

    name: str
    help: str
    label: str | None = None
    #: Label values shown (at 0) before anything was counted under them.
    initial: tuple[str, ...] = ()


COUNTERS: dict[str, CounterSpec] = {
    spec.name: spec
    for spec in (
        CounterSpec(
            "documents",
            "Retrievals that ended, by outcome (stored, already_stored, failed)",
            "outcome",
            ("stored", "already_stored", "failed"),
        ),
        CounterSpec("document_bytes_in", "Bytes received from document hosts (compressed, as sent)"),
        CounterSpec("document_bytes_out", "Bytes written to the storage (decompressed, transcoded)"),
        CounterSpec("document_failures", "Failed retrieval runs, retried or not, by error class", "kind"),
        CounterSpec("document_retries", "Retrievals scheduled again after a failure (waits excluded)"),
        CounterSpec("document_claim_waits", "Retrievals that found their document claimed by another run and wait"),
        CounterSpec("rate_limit_waits", "Tasks that found the fleet's SP-API quota in use and wait for their turn"),
        CounterSpec("spapi_throttled", "HTTP 429 answers from SP-API and LWA to the workers"),
    )
}
#: Every metric name :class:`FleetCollector` exports (as Prometheus shows them), for dashboards' tests.
GAUGES: dict[str, str] = {
    "queue_depth": "Messages waiting in a queue of the broker",
    "broker_unacked": "Messages delivered to workers and not acknowledged yet (running, or waiting for a countdown)",
    "broker_held_messages": "Messages RabbitMQ holds for good in its delay queues (never delivered; RabbitMQ only)",
    "documents_in_flight": "Documents taken by a task, not yet stored or failed for good",
    "failed_documents": "Documents in the failure ledger (failed for good, not stored yet)",
    "redis_up": "1 when the exporter could read the broker's Redis, else 0",
}
FATAL_COUNTER = "fatal_reports"
SECONDS_HISTOGRAM = "document_seconds"


def exported_names() -> set[str]:
    """The names of every series family the exporter produces (counters with ``_total``)."""
    names = {f"{PREFIX}{name}_total" for name in COUNTERS}
    names |= {f"{PREFIX}{name}" for name in GAUGES}
    names.add(f"{PREFIX}{FATAL_COUNTER}_total")
    seconds = f"{PREFIX}{SECONDS_HISTOGRAM}"
    names |= {seconds, f"{seconds}_bucket", f"{seconds}_sum", f"{seconds}_count"}
    return names


#: One addition: (hash key, field, amount); a float amount is added with HINCRBYFLOAT.
Addition = tuple[str, str, int | float]


class WorkerMetrics:
    """Adds to the fleet's counters in Redis (see the module docstring), through the thread's open batch if any."""

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def count(self, name: str, label: str | None = None, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name`` (one of :data:`COUNTERS`), under ``label`` if it has one."""
        if amount <= 0:
            return
        self._add([(COUNTERS_KEY, _field(name, label), amount)])

    def add_bytes(self, bytes_in: int, bytes_out: int) -> None:
        """Count bytes received and written (called as a download goes, so rates show during it)."""
        additions: list[Addition] = []
        if bytes_in > 0:
            additions.append((COUNTERS_KEY, "document_bytes_in", bytes_in))
        if bytes_out > 0:
            additions.append((COUNTERS_KEY, "document_bytes_out", bytes_out))
        if additions:
            self._add(additions)

    def count_stored(self, seconds: float | None) -> None:
        """Count one stored document and, when known, how long it took (one round trip for both)."""
        additions: list[Addition] = [(COUNTERS_KEY, _field("documents", "stored"), 1)]
        if seconds is not None:
            additions += _observation(seconds)
        self._add(additions)

    def _add(self, additions: list[Addition]) -> None:
        batch = getattr(_open, "batch", None)
        if batch is not None:
            batch.add(additions)
        else:
            _write(self._redis, additions)


class MetricsBatch:
    """Additions held for one task: summed per field, written in one round trip by :meth:`flush`."""

    def __init__(self, client: redis.Redis, clock: Callable[[], float] = time.monotonic) -> None:
        self._redis = client
        self._clock = clock
        self._held: dict[tuple[str, str], int | float] = {}
        self._since: float | None = None

    def add(self, additions: Iterable[Addition]) -> None:
        """Hold ``additions``; write everything held once the oldest is :data:`BATCH_MAX_SECONDS` old."""
        now = self._clock()
        if self._since is None:
            self._since = now
        for key, field, amount in additions:
            self._held[(key, field)] = self._held.get((key, field), 0) + amount
        if now - self._since >= BATCH_MAX_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write what is held (one pipelined round trip), then hold nothing."""
        held, self._held, self._since = self._held, {}, None
        if held:
            _write(self._redis, [(key, field, amount) for (key, field), amount in held.items()])


_open = threading.local()


def open_batch(client: redis.Redis) -> MetricsBatch:
    """Hold this thread's additions from now on (a worker calls it as a task starts), until :func:`close_batch`."""
    close_batch()  # a batch left open (its task's end not seen) is written, not dropped
    batch = _open.batch = MetricsBatch(client)
    return batch


def close_batch() -> None:
    """Write this thread's batch, if one is open, and add directly again (a worker calls it as a task ends)."""
    batch = getattr(_open, "batch", None)
    _open.batch = None
    if batch is not None:
        batch.flush()


def _write(client: redis.Redis, additions: Sequence[Addition]) -> None:
    try:
        with redis_errors("recording metrics"), client.pipeline(transaction=False) as pipe:
            for key, field, amount in additions:
                if isinstance(amount, float):
                    pipe.hincrbyfloat(key, field, amount)
                else:
                    pipe.hincrby(key, field, amount)
            pipe.execute()
    except FAILURES as exc:
        # Metrics are not worth a failed document; the counters miss these additions.
        log.debug("metrics not recorded: %s", exc)


THROTTLED_STATUS = 429


def watch_throttling(session: requests.Session, record: Callable[[], None]) -> None:
    """Call ``record()`` for every HTTP 429 that ``session`` receives (once per session, however often called).

    The SP-API transport retries a 429 by itself, so the task never sees most of them: a response hook
    on the process's SP-API session counts each one.
    """
    hooks = session.hooks.setdefault("response", [])
    if any(getattr(hook, "_spreports_throttling", False) for hook in hooks):
        return

    def on_response(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.status_code == THROTTLED_STATUS:
            record()

    on_response._spreports_throttling = True  # type: ignore[attr-defined]
    hooks.append(on_response)


def _field(name: str, label: str | None) -> str:
    spec = COUNTERS[name]
    if spec.label is None:
        return name
    return f"{name}:{label or 'unknown'}"


def _bound(bound: float) -> str:
    return floatToGoString(bound)  # type: ignore[no-untyped-call,no-any-return]  # "1.0" ... "+Inf"


#: The histogram's bucket bounds as Prometheus writes them, formatted once.
_BOUNDS = tuple((bound, _bound(bound)) for bound in SECONDS_BUCKETS)


def _observation(seconds: float) -> list[Addition]:
    """The histogram's additions for one document that took ``seconds``: its one bucket and the sum."""
    value = max(seconds, 0.0)
    bound = next(text for limit, text in _BOUNDS if value <= limit)
    return [(SECONDS_KEY, f"bin:{bound}", 1), (SECONDS_KEY, "sum", float(value))]


class FleetCollector(Collector):
    """A prometheus-client collector that reads the fleet's metrics from Redis at each scrape."""

    def __init__(
        self,
        client: redis.Redis,
        queues: Sequence[str],
        queue_depths: Callable[[], Mapping[str, int]] | None = None,
        held_messages: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        """``queue_depths``: how to read the depths when the broker is not this Redis (RabbitMQ);
        ``held_messages``: how to read the messages a RabbitMQ broker holds in its delay queues."""
        self._redis = client
        self._queue_depths = queue_depths
        self._held_messages = held_messages
        # With a broker of its own, Redis holds none of the queues.
        self._queues = () if queue_depths is not None else tuple(queues)

    def collect(self) -> Iterator[Metric]:
        """The counters, the histogram and the gauges as they are in Redis now."""
        try:
            with redis_errors("reading the metrics"):
                snapshot = self._snapshot()
        except FAILURES as exc:
            log.warning("metrics: %s", exc)
            yield _gauge("redis_up", [((), 0.0)])
            return
        counters, seconds, depths, unacked, inflight, failed, fatal = snapshot
        if self._queue_depths is not None:
            depths = self._broker_depths()
        yield from _counters(counters)
        yield _histogram(seconds)
        yield _fatal(fatal)
        yield _gauge("queue_depth", [((queue,), float(depth)) for queue, depth in depths.items()], "queue")
        yield _gauge("broker_unacked", [((), float(unacked))])
        if self._held_messages is not None:
            yield from self._held()
        yield _gauge("documents_in_flight", [((), float(inflight))])
        yield _gauge("failed_documents", [((), float(failed))])
        yield _gauge("redis_up", [((), 1.0)])

    def _snapshot(self) -> tuple[dict[str, str], dict[str, str], dict[str, int], int, int, int, dict[str, int]]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.hgetall(COUNTERS_KEY)
        pipe.hgetall(SECONDS_KEY)
        for queue in self._queues:
            for key in queue_keys(queue):
                pipe.llen(key)
        pipe.hlen(UNACKED_KEY)
        pipe.hlen(INFLIGHT_KEY)
        pipe.hlen(LEDGER_KEY)
        found = pipe.execute()
        counters, seconds = _text_map(found[0]), _text_map(found[1])
        steps = len(PRIORITY_STEPS)
        lengths = found[2 : 2 + steps * len(self._queues)]
        depths = {queue: sum(lengths[i * steps : (i + 1) * steps]) for i, queue in enumerate(self._queues)}
        unacked, inflight, failed = found[2 + steps * len(self._queues) :]
        return counters, seconds, depths, int(unacked), int(inflight), int(failed), self._fatal_counts()

    def _broker_depths(self) -> dict[str, int]:
        assert self._queue_depths is not None
        try:
            return dict(self._queue_depths())
        except Exception as exc:  # a broker that does not answer leaves the depths out
            log.warning("metrics: the broker does not answer (%s)", type(exc).__name__)
            return {}

    def _held(self) -> Iterator[Metric]:
        assert self._held_messages is not None
        try:
            held = self._held_messages()
        except Exception as exc:  # unseen is left out (no series), never reported as nothing held
            log.warning("metrics: the broker's held messages cannot be read (%s)", type(exc).__name__)
            return
        yield _gauge("broker_held_messages", [((), float(sum(held.values())))])

    def _fatal_counts(self) -> dict[str, int]:
        # One hash per report type (spreports.reports.fatal_ledger); the per-report reason keys share the prefix.
        counts: dict[str, int] = {}
        for raw in self._redis.scan_iter(match=f"{FATAL_PREFIX}*", count=1000, _type="hash"):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            if key.startswith(FATAL_REPORT_PREFIX):
                continue
            value = self._redis.hget(key, "count")
            counts[key.removeprefix(FATAL_PREFIX)] = int(value or 0)
        return counts


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold ``queue``'s messages (one per priority step)."""
    return [queue if step == 0 else f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS]


def _text_map(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _counters(values: Mapping[str, str]) -> Iterator[Metric]:
    for spec in COUNTERS.values():
        family = CounterMetricFamily(f"{PREFIX}{spec.name}", spec.help, labels=[spec.label] if spec.label else [])
        if spec.label is None:
            family.add_metric([], float(values.get(spec.name, 0)))
        else:
            found = {
                field.partition(":")[2]: value for field, value in values.items() if field.startswith(f"{spec.name}:")
            }
            for label in sorted({*spec.initial, *found}):
                family.add_metric([label], float(found.get(label, 0)))
        yield family


def _histogram(values: Mapping[str, str]) -> Metric:
    buckets, below = [], 0.0
    for _, bound in _BOUNDS:
        below += float(values.get(f"bin:{bound}", 0))  # this version's: one bucket per document
        buckets.append((bound, below + float(values.get(f"le:{bound}", 0))))  # older versions' cumulative ones
    family = HistogramMetricFamily(
        f"{PREFIX}{SECONDS_HISTOGRAM}", "Seconds a stored document's retrieval took (locate, download, store)"
    )
    family.add_metric([], buckets, sum_value=float(values.get("sum", 0.0)))
    return family


def _fatal(counts: Mapping[str, int]) -> Metric:
    family = CounterMetricFamily(
        f"{PREFIX}{FATAL_COUNTER}",
        "FATAL reports seen, per report type (spreports.reports.fatal_ledger)",
        labels=["report_type"],
    )
    for report_type, count in sorted(counts.items()):
        family.add_metric([report_type], float(count))
    return family


def _gauge(name: str, samples: Iterable[tuple[tuple[str, ...], float]], *labels: str) -> Metric:
    family = GaugeMetricFamily(f"{PREFIX}{name}", GAUGES[name], labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family
