"""REPORT_PROCESSING_FINISHED notifications, built per the official schema and sent to SQS with boto3.

Sending happens on a background thread so that no HTTP answer waits for SQS. The destination ARN
``arn:aws:sqs:<region>:<account>:<name>`` is mapped to a queue URL with ``get_queue_url`` (boto3 honours
``AWS_ENDPOINT_URL_SQS``, so moto's server works like real SQS).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from spreports.simulator.clock import SimClock, iso
from spreports.simulator.config import Faults
from spreports.simulator.world import Report, World

log = logging.getLogger(__name__)
NOTIFICATION_TYPE = "REPORT_PROCESSING_FINISHED"
OTHER_APPLICATION = "amzn1.sellerapps.app.11111111-2222-4333-8444-555555555555"
VENDOR_GROUP_PREFIX = "amzn1.vg."
#: How often Amazon has been seen to deliver one notification (a standard queue's at-least-once, at its worst).
REPEATS = 10


def account_id(seller_id: str) -> str:
    """The ``accountId`` of a partner: a vendor group's id as is, else the seller's merchant account."""
    return seller_id if seller_id.startswith(VENDOR_GROUP_PREFIX) else f"amzn1.merchant.o.{seller_id}"


@dataclass
class SentNotification:
    """One SQS message the simulator sent (or failed to send): the exact body and where it went."""

    queue_arn: str
    body: str
    queue_url: str | None = None
    message_id: str | None = None
    error: str | None = None

    def json(self) -> Any:
        """The body parsed as JSON (raises for a malformed body)."""
        return json.loads(self.body)


def notification(report: Report, *, application_id: str, subscription_id: str, payload_version: str,
                 clock: SimClock) -> dict[str, Any]:  # fmt: skip
    """The camelCase REPORT_PROCESSING_FINISHED notification of a finished report."""
    finished: dict[str, Any] = {"accountId": account_id(report.seller_id)}
    if not report.seller_id.startswith(VENDOR_GROUP_PREFIX):
        # A vendor group's notification carries no sellerId (the schema's second example).
        finished["sellerId"] = report.seller_id
    finished |= {
        "reportId": report.report_id,
        "reportType": report.report_type,
        "processingStatus": report.status,
    }
    if report.document_id:
        finished["reportDocumentId"] = report.document_id
    now = iso(clock.now())
    return {
        "notificationVersion": "2020-09-04",
        "notificationType": NOTIFICATION_TYPE,
        "payloadVersion": payload_version,
        "eventTime": iso(clock.at(report.ended)) if report.ended is not None else now,
        "payload": {"reportProcessingFinishedNotification": finished},
        "notificationMetadata": {
            "applicationId": application_id,
            "subscriptionId": subscription_id,
            "publishTime": now,
            "notificationId": str(uuid.uuid4()),
        },
    }


class Notifier:
    """Turns finished reports into SQS messages, applying the notification faults."""

    def __init__(self, world: World, faults: Faults) -> None:
        self.world = world
        self.faults = faults
        self.sent: list[SentNotification] = []
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._urls: dict[str, str] = {}
        self._clients: dict[str, Any] = {}
        self._malformed = 0
        self._late: list[tuple[float, str, str]] = []  # (due in simulated seconds, queue ARN, body)
        self._thread = threading.Thread(target=self._run, name="simulator-notifier", daemon=True)
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)

    def start(self) -> None:
        """Start the sending thread."""
        self._thread.start()

    def stop(self) -> None:
        """Send what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=30)

    def report_finished(self, report: Report) -> None:
        """Queue the notifications of a finished report for every subscription of its seller."""
        with self.world.lock:
            subscriptions = list(self.world.subscriptions.get((report.seller_id, NOTIFICATION_TYPE), []))
            targets = [(s, self.world.destinations.get(s.destination_id)) for s in subscriptions]
        for subscription, destination in targets:
            if destination is None:
                continue
            body = notification(
                report, application_id=self.world.config.application_id,
                subscription_id=subscription.subscription_id, payload_version=subscription.payload_version,
                clock=self.world.clock,
            )  # fmt: skip
            self._enqueue(destination.arn, body, report)

    def _enqueue(self, arn: str, body: dict[str, Any], report: Report) -> None:
        if self.faults.take("malformed_notifications"):
            self._malformed += 1
            if self._malformed % 2:
                self._queue.put((arn, json.dumps(body)[: len(json.dumps(body)) // 2]))
            else:
                del body["payload"]["reportProcessingFinishedNotification"]["reportId"]
                del body["notificationMetadata"]
                self._queue.put((arn, json.dumps(body)))
            return
        if self.faults.take("legacy_notifications"):
            body["payload"]["reportProcessingFinishedNotification"].pop("accountId")
            body["payload"]["reportProcessingFinishedNotification"]["sellerId"] = report.seller_id
        text = json.dumps(body)
        copies = 2 if self.faults.take("duplicate_notifications") else 1
        if self.faults.take("repeated_notifications"):
            copies = REPEATS
        if self.faults.take("late_notifications"):
            with self._lock:
                due = self.world.clock.seconds() + self.faults.late_seconds
                self._late.extend((due, arn, text) for _ in range(copies))
        else:
            for _ in range(copies):
                self._queue.put((arn, text))
        if self.faults.take("foreign_notifications"):
            foreign = json.loads(text)
            foreign["notificationMetadata"].update(applicationId=OTHER_APPLICATION, notificationId=str(uuid.uuid4()))
            foreign["notificationMetadata"]["subscriptionId"] = str(uuid.uuid4())
            foreign["payload"]["reportProcessingFinishedNotification"]["reportId"] = self.world.new_id()
            self._queue.put((arn, json.dumps(foreign)))

    def release_late(self) -> int:
        """Queue the late notifications whose simulated delivery time has come; returns how many."""
        now = self.world.clock.seconds()
        with self._lock:
            due = [item for item in self._late if item[0] <= now]
            self._late = [item for item in self._late if item[0] > now]
        for _, arn, text in due:
            self._queue.put((arn, text))
        return len(due)

    def pending_late(self) -> int:
        """How many late notifications are still held back."""
        with self._lock:
            return len(self._late)

    def send_raw(self, arn: str, body: str) -> None:
        """Queue one message body as is."""
        self._queue.put((arn, body))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is sent; False on timeout."""
        with self._done:
            return self._done.wait_for(lambda: self._queue.unfinished_tasks == 0, timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._send(*item)
            finally:
                self._queue.task_done()
                with self._done:
                    self._done.notify_all()

    def _send(self, arn: str, body: str) -> None:
        record = SentNotification(queue_arn=arn, body=body)
        try:
            client, url = self._target(arn)
            record.queue_url = url
            record.message_id = client.send_message(QueueUrl=url, MessageBody=body)["MessageId"]
        except Exception as exc:  # botocore/boto3 errors of any kind: record and keep going
            record.error = f"{type(exc).__name__}: {exc}"
            log.warning("notification to %s not delivered: %s", arn, record.error)
        with self._lock:
            self.sent.append(record)

    def _target(self, arn: str) -> tuple[Any, str]:
        import boto3

        _, _, _, region, account, name = arn.split(":", 5)
        client = self._clients.get(region)
        if client is None:
            # A session per notifier: boto3's default session is not safe to share between threads.
            client = self._clients[region] = boto3.session.Session().client("sqs", region_name=region)
        url = self._urls.get(arn)
        if url is None:
            url = self._urls[arn] = client.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return client, url
