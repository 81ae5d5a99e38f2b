"""The fleet's metrics in Redis, their export, the 429 watch, the progress hook's pace, the Grafana dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fakeredis
import redis
import requests
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from requests.hooks import dispatch_hook

from spreports.documents.pipeline import TransferProgress
from spreports.metrics import (
    SECONDS_KEY,
    FleetCollector,
    WorkerMetrics,
    close_batch,
    exported_names,
    open_batch,
    queue_keys,
    watch_throttling,
)
from spreports.task_arguments import DocumentRequest
from spreports.tasks.progress import PROGRESS_EVENT, PROGRESS_STATE, DownloadProgress
from spreports.workers.relay.metrics import COUNTERS as RELAY_COUNTERS

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "spreports.json"


def scrape(client: redis.Redis) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(client, ["control", "documents"]))
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counts_of_several_processes_add_up_in_one_export() -> None:
    client = fakeredis.FakeRedis()
    for worker in (WorkerMetrics(client), WorkerMetrics(client)):  # two processes, one Redis
        worker.count_stored(3.0)
        worker.count("document_failures", "ServiceUnavailable")
        worker.add_bytes(1000, 4000)
    WorkerMetrics(client).count_stored(100.0)
    WorkerMetrics(client).count("spapi_throttled", amount=0)  # nothing
    samples = scrape(client)
    assert samples[("spreports_documents_total", (("outcome", "stored"),))] == 3
    assert samples[("spreports_documents_total", (("outcome", "failed"),))] == 0  # shown before the first
    assert samples[("spreports_document_failures_total", (("kind", "ServiceUnavailable"),))] == 2
    assert samples[("spreports_document_bytes_in_total", ())] == 2000
    assert samples[("spreports_document_bytes_out_total", ())] == 8000
    assert samples[("spreports_spapi_throttled_total", ())] == 0
    assert samples[("spreports_document_seconds_bucket", (("le", "1.0"),))] == 0
    assert samples[("spreports_document_seconds_bucket", (("le", "5.0"),))] == 2
    assert samples[("spreports_document_seconds_bucket", (("le", "120.0"),))] == 3
    assert samples[("spreports_document_seconds_bucket", (("le", "+Inf"),))] == 3
    assert samples[("spreports_document_seconds_count", ())] == 3
    assert samples[("spreports_document_seconds_sum", ())] == 106.0


def test_gauges_read_the_queues_the_ledgers_and_the_fatal_counters() -> None:
    client = fakeredis.FakeRedis()
    client.rpush("documents", "a", "b")
    client.rpush(queue_keys("documents")[2], "c")  # a priority step's list counts too
    client.hset("unacked", "tag", "message")
    client.hset("spreports:inflight", "S:D", "{}")
    client.hset("spreports:failed", mapping={"S:D1": "{}", "S:D2": "{}"})
    client.hset("spreports:fatal:GET_X", mapping={"count": 4, "last_reason": "no data"})
    client.set("spreports:fatal:report:S:123", "a reason, not a counter")
    samples = scrape(client)
    assert samples[("spreports_queue_depth", (("queue", "documents"),))] == 3
    assert samples[("spreports_queue_depth", (("queue", "control"),))] == 0
    assert samples[("spreports_broker_unacked", ())] == 1
    assert samples[("spreports_documents_in_flight", ())] == 1
    assert samples[("spreports_failed_documents", ())] == 2
    assert samples[("spreports_fatal_reports_total", (("report_type", "GET_X"),))] == 4
    assert not any(name == "spreports_fatal_reports_total" and labels != (("report_type", "GET_X"),)
                   for name, labels in samples)  # fmt: skip
    assert samples[("spreports_redis_up", ())] == 1


def test_a_redis_that_does_not_answer_is_a_gauge_not_an_error() -> None:
    server = fakeredis.FakeServer()
    server.connected = False  # fakeredis raises ConnectionError
    down = fakeredis.FakeRedis(server=server)
    assert scrape(down) == {("spreports_redis_up", ()): 0.0}
    WorkerMetrics(down).count("documents", "stored")  # recording never raises


def test_every_429_of_a_session_is_counted_once() -> None:
    session = requests.Session()
    seen: list[int] = []
    watch_throttling(session, lambda: seen.append(1))
    watch_throttling(session, lambda: seen.append(1))  # idempotent: one hook
    for status in (200, 429, 503, 429):
        response = requests.Response()
        response.status_code = status
        dispatch_hook("response", session.hooks, response)
    assert len(seen) == 2


class FakeTask:
    """What the progress hook uses of a Celery task: its request id, update_state and send_event."""

    def __init__(self, ignore_result: bool = False) -> None:
        self.request = SimpleNamespace(id="task-1", ignore_result=None)  # the sender did not say
        self.ignore_result = ignore_result
        self.states: list[tuple[str, dict[str, Any]]] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def update_state(self, *, state: str, meta: dict[str, Any]) -> None:
        self.states.append((state, meta))

    def send_event(self, type_: str, retry: bool = True, **fields: Any) -> None:
        self.events.append((type_, fields))


def test_progress_is_published_at_its_pace_never_per_block_and_every_byte_is_counted() -> None:
    client = fakeredis.FakeRedis()
    task, now = FakeTask(), [0.0]
    request = DocumentRequest.parse(seller_id="S", report_document_id="D", report_id="R", report_type="T")
    hook = DownloadProgress(task, request, every_seconds=2.0, every_bytes=100, metrics=WorkerMetrics(client),
                            clock=lambda: now[0])  # type: ignore[arg-type]  # fmt: skip
    for step in range(1, 12):  # eleven blocks of 10 bytes in 1.1 s: none before 100 bytes (or 2 s)
        now[0] = step * 0.1
        hook(TransferProgress(step * 10, step * 40, 1000, 1))
    now[0] = 3.2
    hook(TransferProgress(120, 480, 1000, 1))  # 2.2 s since the last: due
    assert [meta["bytes_in"] for _, meta in task.states] == [100, 120]
    assert {state for state, _ in task.states} == {PROGRESS_STATE}
    assert [fields for _, fields in task.events] == [meta for _, meta in task.states]
    assert {kind for kind, _ in task.events} == {PROGRESS_EVENT}
    latest = task.states[-1][1]
    assert latest["percent"] == 12.0 and latest["rate"] == round(20 / 2.2) and latest["report_type"] == "T"
    # A second attempt starts from zero; the first's bytes stay counted; the end counts the rest.
    hook(TransferProgress(50, 200, 1000, 2))
    now[0] = 5.3
    hook(TransferProgress(60, 240, 1000, 2))
    assert task.states[-1][1]["attempt"] == 2
    hook.finish(1000, 4000)
    samples = scrape(client)
    assert samples[("spreports_document_bytes_in_total", ())] == 120 + 1000
    assert samples[("spreports_document_bytes_out_total", ())] == 480 + 4000


def test_a_small_document_publishes_no_progress_and_an_ignored_result_gets_events_only() -> None:
    client = fakeredis.FakeRedis()
    now = [0.0]
    request = DocumentRequest.parse(seller_id="S", report_document_id="D")
    quick = FakeTask()
    hook = DownloadProgress(quick, request, every_seconds=2.0, every_bytes=100, metrics=WorkerMetrics(client),
                            clock=lambda: now[0])  # type: ignore[arg-type]  # fmt: skip
    hook(TransferProgress(40, 90, 40, 1))  # the whole document in one block, well within 2 s
    hook.finish(40, 90)
    assert quick.states == [] and quick.events == []
    ignored = FakeTask(ignore_result=True)  # the relay's task: no result, so no state either
    hook = DownloadProgress(ignored, request, every_seconds=2.0, every_bytes=100, metrics=WorkerMetrics(client),
                            clock=lambda: now[0])  # type: ignore[arg-type]  # fmt: skip
    hook(TransferProgress(100, 400, 1000, 1))
    assert ignored.states == [] and [kind for kind, _ in ignored.events] == [PROGRESS_EVENT]


def test_the_dashboard_uses_only_metrics_we_export() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\bspreports_[a-z_]+\b", expr)}
    ours = exported_names() | {f"spreports_relay_{name}_total" for name in RELAY_COUNTERS}
    assert used and used <= ours, used - ours
    # Each worker metric (the histogram as its buckets) is on the dashboard.
    assert {name for name in exported_names() if not name.startswith("spreports_document_seconds")} <= used
    assert "spreports_document_seconds_bucket" in used
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])


def test_a_stored_document_is_counted_with_its_seconds_in_one_round_trip() -> None:
    client = fakeredis.FakeRedis()
    pipelines = []
    real_pipeline = client.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipelines.append(1)
        return real_pipeline(*args, **kwargs)

    client.pipeline = counting_pipeline  # type: ignore[method-assign]
    metrics = WorkerMetrics(client)
    metrics.count_stored(3.0)
    metrics.count_stored(None)  # the time unknown: counted, not observed
    assert len(pipelines) == 2
    samples = scrape(client)
    assert samples[("spreports_documents_total", (("outcome", "stored"),))] == 2
    assert samples[("spreports_document_seconds_bucket", (("le", "5.0"),))] == 1
    assert samples[("spreports_document_seconds_count", ())] == 1
    assert samples[("spreports_document_seconds_sum", ())] == 3.0


def test_a_tasks_additions_are_written_in_one_round_trip_as_it_ends() -> None:
    client = fakeredis.FakeRedis()
    commands: list[int] = []
    real_pipeline = client.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = real_pipeline(*args, **kwargs)
        real_execute = pipe.execute

        def execute(*a: Any, **k: Any) -> Any:
            commands.append(len(pipe.command_stack))
            return real_execute(*a, **k)

        pipe.execute = execute
        return pipe

    client.pipeline = counting_pipeline  # type: ignore[method-assign]
    open_batch(client)
    metrics = WorkerMetrics(client)
    metrics.add_bytes(10, 40)
    metrics.add_bytes(30, 60)  # summed with the first
    metrics.count_stored(0.2)
    assert commands == [] and not client.exists(SECONDS_KEY)  # held
    close_batch()
    assert commands == [5]  # bytes in, bytes out, stored, its bucket, the sum
    metrics.count("document_retries")  # no batch open: written at once
    assert commands == [5, 1]
    samples = scrape(client)
    assert samples[("spreports_document_bytes_in_total", ())] == 40
    assert samples[("spreports_document_bytes_out_total", ())] == 100
    assert samples[("spreports_document_seconds_count", ())] == 1


def test_the_cumulative_buckets_of_an_older_version_still_add_up() -> None:
    client = fakeredis.FakeRedis()
    # What an older version wrote for one document of 3 s: every bucket from 5 s up, and the count.
    old = {f"le:{bound}": 1 for bound in ("5.0", "15.0", "30.0", "60.0", "120.0", "300.0", "600.0")}
    client.hset(SECONDS_KEY, mapping={**old, "le:1200.0": 1, "le:2400.0": 1, "le:+Inf": 1, "sum": 3.0, "count": 1})
    WorkerMetrics(client).count_stored(0.5)
    samples = scrape(client)
    assert samples[("spreports_document_seconds_bucket", (("le", "1.0"),))] == 1
    assert samples[("spreports_document_seconds_bucket", (("le", "5.0"),))] == 2
    assert samples[("spreports_document_seconds_bucket", (("le", "+Inf"),))] == 2
    assert samples[("spreports_document_seconds_count", ())] == 2
    assert samples[("spreports_document_seconds_sum", ())] == 3.5
