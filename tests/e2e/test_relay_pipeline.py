"""The whole notification path with real processes, under disruption.

simulator -> moto SQS -> relay (``python -m spreports.workers.relay``) -> Redis -> worker (``celery worker``) -> storage.

The simulator finishes reports and notifies, with faults on: notifications delivered twice, one
delivered ten times, another application's notifications, malformed bodies, another notification
type; CANCELLED and FATAL reports. Mid-run the relay is stopped with SIGTERM or killed with SIGKILL
(and restarted), or Redis is killed and restarted. Afterwards every DONE document is stored exactly
once, the FATAL one as an error document, nothing for CANCELLED, and every bad message is in the
dead-letter queue.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis

from benchmarks.lab import UNACKED, notified_document
from spreports import names
from spreports.simulator import Faults, start_simulator
from tests.integration.relay.conftest import queue_counts, wait_until
from tests.servers import RedisServer
from tests.sim import quick_config
from tests.unit.relay.messages import other_type_body

DONE_PER_HALF = 8


class Processes:
    """The product's processes of one test, each logging to a file; all killed at the end."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env, self.cwd = env, cwd
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with open(self.cwd / f"{name}.log", "ab") as out:
            process = subprocess.Popen(
                [sys.executable, *args], env=self.env, cwd=self.cwd, stdout=out, stderr=subprocess.STDOUT
            )
        self.started.append(process)
        return process

    def relay(self) -> subprocess.Popen[bytes]:
        return self.start("relay", "-m", "spreports.workers.relay")

    def worker(self) -> subprocess.Popen[bytes]:
        return self.start(
            "worker", "-m", "celery", "-A", "spreports.workers.app", "worker", "-Q", "documents", "--pool", "threads",
            "-c", "2", "-l", "INFO", "--without-mingle", "--without-gossip", "-n", f"e2e-{uuid.uuid4().hex[:6]}@%h",
        )  # fmt: skip

    def log(self, name: str) -> str:
        path = self.cwd / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def stored(root: Path) -> list[Path]:
    """Document files (not manifests, not the index)."""
    return [
        p for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".manifest.json") and "_index" not in p.relative_to(root).parts
    ]  # fmt: skip


def files_of(files: list[Path], document_id: str) -> list[Path]:
    return [p for p in files if p.name.startswith(document_id + ".")]


def indexed(root: Path) -> set[str]:
    return {p.name.removesuffix(".manifest.json") for p in (root / "_index").rglob("*.manifest.json")}


def finish(sim: Any, status: str, with_document: bool = False) -> str:
    """Create a report for the default seller and end it with ``status``; returns its report id."""
    from spreports.simulator import DocumentSpec

    report = sim.world.create_report(sim.seller_id, "GET_MERCHANT_LISTINGS_ALL_DATA", ("ATVPDKIKX0DER",))
    if with_document:
        report.document_id = sim.world.add_document(report, DocumentSpec(report_type=report.report_type)).document_id
    sim.world.finish(report, status)
    report_id: str = report.report_id
    return report_id


@pytest.mark.timeout(600)
@pytest.mark.parametrize("disruption", ["none", "relay-sigterm"])
def test_every_done_document_stored_exactly_once(
    disruption: str, redis_server: RedisServer, aws_endpoint: str, tmp_path: Path
) -> None:
    check_pipeline(disruption, redis_server, aws_endpoint, tmp_path)


def check_pipeline(disruption: str, redis_server: RedisServer, aws_endpoint: str, tmp_path: Path) -> None:
    """The whole pipeline under ``disruption`` (``test_relay_pipeline_kills.py`` runs the killing ones)."""
    sqs = boto3.client("sqs", endpoint_url=aws_endpoint, region_name="us-east-1")
    queue_url = sqs.create_queue(QueueName=f"e2e-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    dlq_url = sqs.create_queue(QueueName=f"e2e-dlq-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    faults = Faults(duplicate_notifications=3, foreign_notifications=2, malformed_notifications=2)
    # One FATAL report carries its error document, the other none (Amazon ends some FATAL reports so).
    sim = start_simulator(quick_config(faults=faults, fatal_error_documents=False))
    processes = None
    try:
        arn = f"arn:aws:sqs:us-east-1:123456789012:{queue_url.rsplit('/', 1)[1]}"
        sim.subscribe_queue(arn)
        root = tmp_path / "reports"
        env = {k: v for k, v in os.environ.items() if not k.startswith("SPREPORTS_")}
        env.update(sim.env())
        env.update(
            {
                "SPREPORTS_BROKER_URL": redis_server.url,
                "SPREPORTS_DATA_DIR": str(tmp_path / "data"),
                "SPREPORTS_STORAGE__URL": str(root),
                "SPREPORTS_SQS__QUEUE_URL": queue_url,
                "SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL": dlq_url,
                "SPREPORTS_SQS__WAIT_TIME_SECONDS": "1",
                # Far longer than a loaded machine stalls a receiver (no message reappears while in hand),
                # and no longer: a copy left while another receiver relays it (the duplicates), or in
                # flight in a killed relay, reappears after it, and the test waits for that.
                "SPREPORTS_SQS__VISIBILITY_TIMEOUT": "10",
                "SPREPORTS_SQS__RECEIVERS": "2",
            }
        )
        processes = Processes(env, tmp_path)
        processes.worker()
        relay = processes.relay()

        # First half: DONE documents (three delivered twice, two followed by a foreign notification,
        # the first two malformed), one notification ten times, one of another type.
        first = [sim.add_document(notify=True) for _ in range(DONE_PER_HALF)]
        sent = sim.wait_for_notifications(DONE_PER_HALF + 3 + 2)
        valid = next(n for n in sent if notified_document(sim, n.body))
        for _ in range(9):
            sim.notifier.send_raw(arn, valid.body)
        sim.notifier.send_raw(arn, other_type_body())
        cancelled = finish(sim, "CANCELLED")
        fatal_with_document = finish(sim, "FATAL", with_document=True)
        finish(sim, "FATAL")

        sim.notifier.flush()
        first_valid = valid_documents(sim) & set(first)
        error_document = fatal_with_document_id(sim, fatal_with_document)
        if disruption == "redis-restart":
            # Tasks already in Redis would die with it (no persistence here): let the first half land, the
            # error document included, and the worker acknowledge every task (a task still being
            # acknowledged when Redis dies takes the worker down with it: see the suite's report).
            broker = redis.Redis.from_url(redis_server.url)

            def first_half_done() -> bool:
                landed = first_valid | {error_document} <= indexed(root)
                return landed and broker.llen(names.DOCUMENTS_QUEUE) == 0 and broker.hlen(UNACKED) == 0

            wait_until(first_half_done, timeout=180, what="the first half stored and acknowledged")
            broker.close()
            redis_server.stop()
        elif disruption.startswith("relay-"):
            wait_until(lambda: "relayed notification" in processes.log("relay"), what="the relay at work")
            sig = signal.SIGTERM if disruption == "relay-sigterm" else signal.SIGKILL
            relay.send_signal(sig)
            assert relay.wait(timeout=60) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)

        second = [sim.add_document(notify=True) for _ in range(DONE_PER_HALF)]
        sim.notifier.flush()
        if disruption == "redis-restart":
            wait_until(lambda: "Redis unavailable" in processes.log("relay"), what="the relay noticing the outage")
            redis_server.start()
        elif disruption.startswith("relay-"):
            processes.relay()

        # The documents whose notification arrived intact (two were replaced by malformed bodies).
        done = valid_documents(sim) - {error_document}
        assert len(done) == 2 * DONE_PER_HALF - 2 and done <= set(first) | set(second)
        wait_until(lambda: done | {error_document} <= indexed(root), timeout=300, what="every document stored")
        wait_until(lambda: queue_counts(sqs, queue_url) == (0, 0), timeout=120, what="an empty queue")

        # Exactly once: one file per document, no temporary leftovers, nothing else stored.
        files = stored(root)
        for document_id in done:
            assert len(files_of(files, document_id)) == 1, (document_id, files_of(files, document_id))
        [error_file] = files_of(files, error_document)
        assert "_errors" in error_file.parts
        assert len(files) == len(done) + 1, files
        assert cancelled not in json.dumps([str(p) for p in root.rglob("*")])

        # Every bad message accounted for: two malformed, two foreign, one of another type. A relay
        # killed between copying to the DLQ and deleting copies again when the message reappears.
        wait_until(lambda: queue_counts(sqs, dlq_url)[0] >= 5, what="five dead-lettered messages")
        dead = _dead_letters(sqs, dlq_url)
        kinds = sorted(dead.values())
        assert kinds == ["not-json", "other-application", "other-application", "other-type", "wrong-shape"]
        if disruption != "relay-sigkill":
            assert queue_counts(sqs, dlq_url) == (0, 5)
        assert "Traceback" not in processes.log("relay")
    finally:
        if processes is not None:
            processes.stop_all()
        sim.stop()


def fatal_with_document_id(sim: Any, report_id: str) -> str:
    document_id: str = sim.world.reports[(sim.seller_id, report_id)].document_id
    return document_id


def valid_documents(sim: Any) -> set[str]:
    """Documents of the intact notifications of our application sent so far."""
    return {d for sent in sim.notifications() if (d := notified_document(sim, sent.body))}


def _dead_letters(sqs: Any, dlq_url: str) -> dict[str, str]:
    """The dead-letter queue's messages: kind by source message id (copies of one source collapse)."""
    kinds: dict[str, str] = {}
    while True:
        messages = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=1,
            VisibilityTimeout=300,
        ).get("Messages", [])  # fmt: skip
        if not messages:
            return kinds
        for message in messages:
            attributes = message["MessageAttributes"]
            kinds[attributes["sourceMessageId"]["StringValue"]] = attributes["kind"]["StringValue"]
