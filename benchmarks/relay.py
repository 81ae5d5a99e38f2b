"""Relay throughput beside a bare boto3 receive(10)/delete_message_batch loop on the same SQS queue.

Both drain a moto SQS queue (``moto_server`` in its own process) filled with N valid
REPORT_PROCESSING_FINISHED notifications. The bare loop only receives and deletes; the relay also
parses, claims, publishes a Celery task into Redis (the product's embedded redis-server), marks and
deletes. Rounds are interleaved (bare, relay, relay, bare, ...) and the medians compared; the goal is
relay >= 0.8x bare.

    .venv/bin/python benchmarks/relay.py --notifications 500 --rounds 5

moto's receive slows down as its queue grows (it scans the queue), so both loops are bound by moto;
the per-notification time spent in the relay's own batch handling is printed as well.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
from lab import aws_environment, moto_server

from spreports import names
from spreports.connection import connect
from spreports.settings import Settings
from spreports.workers.app import create_app
from spreports.workers.embedded_redis import EmbeddedRedis
from spreports.workers.relay.metrics import RelayCounters
from spreports.workers.relay.process import celery_publisher
from spreports.workers.relay.receiver import Relay, RelayOptions


def notification_body(index: int) -> str:
    report_id = str(50000000000 + index)
    return json.dumps(
        {
            "notificationVersion": "2020-09-04",
            "notificationType": "REPORT_PROCESSING_FINISHED",
            "payloadVersion": "2020-09-04",
            "eventTime": "2026-11-28T03:35:13.214Z",
            "payload": {
                "reportProcessingFinishedNotification": {
                    "sellerId": "A3TH9S8BH6GOGM",
                    "accountId": "amzn1.merchant.o.A3TH9S8BH6GOGM",
                    "reportId": report_id,
                    "reportType": "GET_MERCHANT_LISTINGS_ALL_DATA",
                    "processingStatus": "DONE",
                    "reportDocumentId": f"amzn1.tortuga.4.na.{uuid.uuid4()}.T{report_id}",
                }
            },
            "notificationMetadata": {
                "applicationId": "amzn1.sellerapps.app.bench",
                "subscriptionId": "subscription-bench",
                "publishTime": "2026-11-28T03:35:14.284Z",
                "notificationId": str(uuid.uuid4()),
            },
        }
    )


def fill(sqs: Any, queue_url: str, count: int) -> None:
    for start in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": notification_body(start + i)} for i in range(min(10, count - start))]
        sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)


def bare_loop(sqs: Any, queue_url: str, count: int) -> float:
    """Receive 10 and delete them in one batch until ``count`` are gone; returns seconds."""
    done = 0
    started = time.perf_counter()
    while done < count:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=60
        ).get("Messages", [])
        if not messages:
            continue
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        done += len(sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries).get("Successful", []))
    return time.perf_counter() - started


def relay_loop(relay: Relay, count: int) -> tuple[float, float]:
    """The relay's own receive + handle_batch until ``count`` are published; returns (seconds, in handle_batch)."""
    handling = 0.0
    started = time.perf_counter()
    while relay.counters.snapshot()["relayed"] < count:
        messages = relay.receive()
        if messages:
            before = time.perf_counter()
            relay.handle_batch(messages)
            handling += time.perf_counter() - before
    return time.perf_counter() - started, handling


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notifications", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with moto_server() as endpoint, aws_environment():
        data_dir = Path(tempfile.mkdtemp(prefix="spreports-bench-"))
        embedded = EmbeddedRedis(data_dir)
        try:
            broker = embedded.ensure_running()
            store = connect(broker)
            settings = Settings(broker_url=broker, data_dir=data_dir)
            app = create_app(settings)
            sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
            queue_url = sqs.create_queue(QueueName="bench")["QueueUrl"]
            options = RelayOptions(queue_url=queue_url, wait_time_seconds=1, visibility_timeout=60)
            publish = celery_publisher(app)
            rates: dict[str, list[float]] = {"bare": [], "relay": []}
            cpu: dict[str, list[float]] = {"bare": [], "relay": []}
            per_notification: list[float] = []
            for round_number in range(args.rounds):
                order = ["bare", "relay"] if round_number % 2 == 0 else ["relay", "bare"]
                for variant in order:
                    store.flushdb()
                    fill(sqs, queue_url, args.notifications)
                    cpu_before = time.process_time()
                    if variant == "bare":
                        seconds = bare_loop(sqs, queue_url, args.notifications)
                    else:
                        relay = Relay(sqs, store, publish, options, RelayCounters())
                        seconds, handling = relay_loop(relay, args.notifications)
                        per_notification.append(handling / args.notifications)
                        assert store.llen(names.DOCUMENTS_QUEUE) == args.notifications
                    cpu[variant].append((time.process_time() - cpu_before) / args.notifications)
                    rates[variant].append(args.notifications / seconds)
                    print(
                        f"round {round_number + 1} {variant:5}: {args.notifications / seconds:8.1f} notifications/s",
                        flush=True,
                    )
            bare, relayed = statistics.median(rates["bare"]), statistics.median(rates["relay"])
            # Each round's two runs are adjacent in time, so their ratio cancels most of the machine's drift.
            paired = statistics.median(r / b for r, b in zip(rates["relay"], rates["bare"], strict=True))
            print(
                f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
            )
            print(f"median bare boto3 loop: {bare:.1f} notifications/s")
            print(f"median relay:           {relayed:.1f} notifications/s")
            print(f"relay / bare (medians): {relayed / bare:.2f}x (goal >= 0.8x)")
            print(f"relay / bare (median of per-round ratios): {paired:.2f}x")
            overhead = statistics.median(per_notification) * 1e3
            print(f"relay handle_batch (parse, claim, publish, mark, delete): {overhead:.2f} ms per notification")
            bare_cpu, relay_cpu = (statistics.median(cpu[v]) * 1e3 for v in ("bare", "relay"))
            print(f"client CPU per notification: bare {bare_cpu:.2f} ms, relay {relay_cpu:.2f} ms")
            app.close()
        finally:
            embedded.stop()


if __name__ == "__main__":
    main()
