"""The SQS relay: REPORT_PROCESSING_FINISHED notifications in, ``spreports.retrieve_report_document`` tasks out.

Run it as ``spreports relay`` or ``python -m spreports.workers.relay``. Any number of relay processes on any
machines may consume the same queue; each runs ``SPREPORTS_SQS__RECEIVERS`` receiver threads sharing
one boto3 client (created in the main thread: creating clients concurrently races).

One batch, in order (a crash between any two steps loses nothing):

1. receive up to 10 messages (long poll), each hidden for ``SPREPORTS_SQS__VISIBILITY_TIMEOUT``;
2. parse each body; invalid ones go to the dead-letter queue (then are deleted) or, without one,
   stay undeleted for the queue's redrive policy (hidden until the visibility timeout, so no spin);
3. claim each notification id in Redis (``SET NX`` with the visibility timeout as TTL): an id marked
   ``done`` is a duplicate, deleted without a task; an id claimed by another receiver is left alone;
4. publish the task (task id derived from the notification id);
5. only then mark the id ``done`` (TTL 15 days > SQS's 14-day maximum retention);
6. delete what was handled, per entry failures logged (such a message reappears; step 3 absorbs it).

Publish-then-mark, never mark-then-publish: a crash after marking and before publishing would make
the redelivered message look like a duplicate and lose it. A crash after publishing and before
marking only causes a second task, which the idempotent retrieval task absorbs. When Redis fails,
the batch's unpublished messages are not deleted and the receiver stops receiving (which would raise
their receive count towards the redrive limit) until Redis answers again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from botocore.exceptions import BotoCoreError, ClientError

from spreports import keys
from spreports.errors import InvalidNotification, RedisUnavailable, SettingsError, SpreportsError
from spreports.notifications import parse_notification
from spreports.redis_errors import FAILURES, redis_errors
from spreports.reports.cooldowns import start_cooldown
from spreports.settings import Settings
from spreports.task_arguments import DocumentRequest
from spreports.workers.relay.dead_letter import DeadLetterer
from spreports.workers.relay.metrics import RelayCounters

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

log = logging.getLogger("spreports.relay")

NOTIFICATION_KEY_PREFIX = keys.RELAY_NOTIFICATION.prefix
# Invalid messages are claimed by their SQS message id: one dead-letter copy even when SQS hands the
# same message to two receivers at once (a standard queue may, within the visibility timeout).
MESSAGE_KEY_PREFIX = keys.RELAY_MESSAGE.prefix
DONE = b"done"
# SQS keeps a message at most 14 days; a mark must outlive every possible redelivery.
DONE_TTL_SECONDS = 15 * 24 * 3600
MAX_BATCH = 10
BACKOFF_START_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 15.0

#: Publishes one retrieval task; returns only when the broker has it, raises otherwise.
Publish = Callable[[DocumentRequest], None]


@dataclass(frozen=True)
class RelayOptions:
    """What one relay needs from the settings."""

    queue_url: str
    wait_time_seconds: int = 20
    visibility_timeout: int = 60
    dead_letter_queue_url: str | None = None
    application_id: str | None = None
    report_types: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> RelayOptions:
        """Options from ``settings.sqs``; :class:`SettingsError` when no queue is configured."""
        sqs = settings.sqs
        if not sqs.queue_url:
            raise SettingsError("SPREPORTS_SQS__QUEUE_URL: the relay needs the URL of the notifications queue")
        return cls(
            queue_url=sqs.queue_url,
            wait_time_seconds=sqs.wait_time_seconds,
            visibility_timeout=sqs.visibility_timeout,
            dead_letter_queue_url=sqs.dead_letter_queue_url,
            application_id=sqs.application_id,
            report_types=frozenset(sqs.report_types),
        )


@dataclass
class BatchResult:
    """What happened to one batch (for logs and tests): message ids by outcome."""

    published: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


class Relay:
    """One receiver: long-polls the queue and relays each batch (SQS, Redis and the publisher are injected)."""

    def __init__(
        self,
        sqs: SQSClient,
        store: redis.Redis,
        publish: Publish,
        options: RelayOptions,
        counters: RelayCounters | None = None,
    ) -> None:
        self.sqs = sqs
        self.store = store
        self.publish = publish
        self.options = options
        self.counters = counters or RelayCounters()
        #: ``time.monotonic()`` of the last loop turn; the supervisor reads it for the heartbeat.
        self.last_turn = 0.0

    def run(self, stop: threading.Event) -> None:
        """Receive and relay until ``stop`` is set; the batch in hand is always finished first."""
        failures = 0
        while not stop.is_set():
            self.last_turn = time.monotonic()
            try:
                messages = self.receive()
                if messages:
                    self.handle_batch(messages)
                failures = 0
            except FAILURES as exc:
                failures += 1
                log.warning("Redis unavailable (%s); not deleting, backing off until it answers", exc)
                self._wait_for_redis(stop, failures)
            except (BotoCoreError, ClientError) as exc:
                failures += 1
                log.warning("SQS call failed (%s); backing off", _short(exc))
                stop.wait(_backoff(failures))
            except Exception:
                # Never let one batch end the receiver; its messages reappear after the visibility timeout.
                failures += 1
                log.exception("unexpected error while relaying a batch; backing off")
                stop.wait(_backoff(failures))

    def receive(self) -> list[MessageTypeDef]:
        """One long-poll receive of up to 10 messages."""
        response = self.sqs.receive_message(
            QueueUrl=self.options.queue_url,
            MaxNumberOfMessages=MAX_BATCH,
            WaitTimeSeconds=self.options.wait_time_seconds,
            VisibilityTimeout=self.options.visibility_timeout,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return list(response.get("Messages", []))

    def handle_batch(self, messages: Sequence[MessageTypeDef]) -> BatchResult:
        """Relay one batch; raises what the Redis boundary raised (after deleting what is safe) when Redis fails."""
        result = BatchResult()
        deletable: list[MessageTypeDef] = []
        invalid: list[tuple[MessageTypeDef, InvalidNotification]] = []
        actionable: dict[str, list[tuple[MessageTypeDef, DocumentRequest]]] = {}
        self.counters.add("received", len(messages))
        for message in messages:
            classified = self._classify(message, deletable, invalid)
            if classified is not None:
                notification_id, request = classified
                actionable.setdefault(notification_id, []).append((message, request))
        failure: SpreportsError | None = None
        if invalid:
            moved, failure = self._dead_letter(invalid)
            deletable.extend(moved)
        if actionable:
            relayed, relay_failure = self._relay(actionable, result)
            deletable.extend(relayed)
            failure = failure or relay_failure
        self._delete(deletable, result)
        handled = set(result.deleted)
        result.left = [m["MessageId"] for m in messages if m["MessageId"] not in handled]
        if failure is not None:
            raise failure
        return result

    def _classify(
        self,
        message: MessageTypeDef,
        deletable: list[MessageTypeDef],
        invalid: list[tuple[MessageTypeDef, InvalidNotification]],
    ) -> tuple[str, DocumentRequest] | None:
        """The notification's id and retrieval, or None (after sorting the message into ``deletable`` or ``invalid``)."""
        message_id = message["MessageId"]
        try:
            notification = parse_notification(message.get("Body", ""), application_id=self.options.application_id)
        except InvalidNotification as exc:
            self.counters.add("invalid")
            log.warning(
                "invalid message %s (%s, receive count %s): %s",
                message_id, exc.kind, message.get("Attributes", {}).get("ApproximateReceiveCount", "?"), exc,
            )  # fmt: skip
            invalid.append((message, exc))
            return None
        report = notification.report
        if self.options.report_types and report.report_type not in self.options.report_types:
            self.counters.add("skipped")
            log.info("skipped report %s of type %s (not in SQS__REPORT_TYPES)", report.report_id, report.report_type)
            deletable.append(message)
            return None
        request = notification.retrieval_request()
        if request is None:
            if report.processing_status == "CANCELLED":
                self.counters.add("cancelled")
                log.info(
                    "report %s (%s) of %s was cancelled", report.report_id, report.report_type, notification.seller_id
                )
            else:
                self.counters.add("no_document")
                until = self._cool_down(notification.seller_id, report.report_type, report.report_id)
                log.warning("report %s (%s) of %s is FATAL without a document; requests of it wait until %s", report.report_id, report.report_type, notification.seller_id, until)  # fmt: skip
            deletable.append(message)
            return None
        if report.processing_status == "FATAL":
            # Now, not only once its error document is stored: that retrieval may fail or wait.
            self._cool_down(notification.seller_id, report.report_type, report.report_id)
        return notification.notification_id, request

    def _cool_down(self, seller_id: str, report_type: str, report_id: str) -> str:
        """Start a FATAL report's cooldown (once per report); its end, or why it did not start."""
        try:
            return start_cooldown(self.store, seller_id, report_type, report_id=report_id).isoformat(timespec="seconds")
        except FAILURES:
            # The message is handled all the same: a missed cooldown only lets a new request fail again.
            return "? (Redis unavailable: no cooldown)"

    def _relay(
        self, actionable: dict[str, list[tuple[MessageTypeDef, DocumentRequest]]], result: BatchResult
    ) -> tuple[list[MessageTypeDef], SpreportsError | None]:
        """Claim, publish, mark; return the messages safe to delete and the Redis failure, if any."""
        keys = {nid: NOTIFICATION_KEY_PREFIX + nid for nid in actionable}
        try:
            claims = self._claim(list(keys.values()))
        except FAILURES as exc:
            return [], exc
        states = {nid: claims[key] for nid, key in keys.items()}
        deletable: list[MessageTypeDef] = []
        published: list[str] = []
        failure: SpreportsError | None = None
        for notification_id, copies in actionable.items():
            state = states[notification_id]
            if state == "done":
                self.counters.add("duplicates", len(copies))
                log.info("notification %s was relayed before; deleting %d duplicate(s)", notification_id, len(copies))
                deletable.extend(message for message, _ in copies)
            elif state == "busy":
                log.info("notification %s is being relayed by another receiver; leaving it", notification_id)
            elif failure is None:
                try:
                    self.publish(copies[0][1])
                except Exception as exc:
                    failure = RedisUnavailable(f"publish failed: {_short(exc)}")
                    continue
                published.append(notification_id)
                result.published.append(copies[0][0]["MessageId"])
        self._release([keys[nid] for nid in actionable if states[nid] == "claimed" and nid not in published])
        if not published:
            return deletable, failure
        self.counters.add("relayed", len(published))
        try:
            self._mark_done([keys[nid] for nid in published])
        except FAILURES as exc:
            # Published but not marked: keep the messages; a redelivery republishes, the task absorbs it.
            return deletable, exc
        for notification_id in published:
            copies = actionable[notification_id]
            self.counters.add("duplicates", len(copies) - 1)
            deletable.extend(message for message, _ in copies)
            request = copies[0][1]
            ids = {**request.task_kwargs(), "task_id": request.task_id}
            log.info("relayed notification %s (report %s)", notification_id, request.report_id, extra=ids)
        return deletable, failure

    def _claim(self, keys: list[str]) -> dict[str, str]:
        """Per key: ``claimed`` (ours now), ``done`` (handled before) or ``busy`` (another receiver has it)."""
        with redis_errors("claiming messages"):
            pipe = self.store.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, "claimed", nx=True, ex=self.options.visibility_timeout)
            claimed = pipe.execute()
            pipe = self.store.pipeline(transaction=False)
            for key, ok in zip(keys, claimed, strict=True):
                if not ok:
                    pipe.get(key)
            existing = iter(pipe.execute())
        return {
            key: "claimed" if ok else ("done" if next(existing) == DONE else "busy")
            for key, ok in zip(keys, claimed, strict=True)
        }

    def _mark_done(self, keys: list[str]) -> None:
        if not keys:
            return
        with redis_errors("marking handled messages"):
            pipe = self.store.pipeline(transaction=False)
            for key in keys:
                pipe.set(key, DONE, ex=DONE_TTL_SECONDS)
            pipe.execute()

    def _release(self, keys: list[str]) -> None:
        # Best effort: an unreleased claim expires with the visibility timeout anyway.
        if not keys:
            return
        with contextlib.suppress(*FAILURES), redis_errors("releasing claims"):
            self.store.delete(*keys)

    def _dead_letter(
        self, invalid: list[tuple[MessageTypeDef, InvalidNotification]]
    ) -> tuple[list[MessageTypeDef], SpreportsError | None]:
        """Copy invalid messages to the DLQ with their reason, once each; return those safe to delete.

        Claim, copy, mark, as for notifications: a message another receiver is copying is left to it,
        one copied before is deleted without a second copy. Only a relay killed between the copy and
        the mark copies a message twice (both copies carry its ``sourceMessageId``).
        """
        dlq = self.options.dead_letter_queue_url
        if dlq is None:
            for message, _ in invalid:
                log.warning("message %s left for the queue's redrive policy", message["MessageId"])
            return [], None
        keys = {message["MessageId"]: MESSAGE_KEY_PREFIX + message["MessageId"] for message, _ in invalid}
        try:
            states = self._claim(list(keys.values()))
        except FAILURES as exc:
            return [], exc
        copied_before = [message for message, _ in invalid if states[keys[message["MessageId"]]] == "done"]
        for message in copied_before:
            log.info("message %s was moved to the dead-letter queue before; deleting this copy", message["MessageId"])
        ours = [(message, reason) for message, reason in invalid if states[keys[message["MessageId"]]] == "claimed"]
        moved = DeadLetterer(self.sqs, dlq).move(ours) if ours else []
        self.counters.add("dead_lettered", len(moved))
        moved_ids = {message["MessageId"] for message in moved}
        self._release([keys[message["MessageId"]] for message, _ in ours if message["MessageId"] not in moved_ids])
        try:
            self._mark_done([keys[message_id] for message_id in moved_ids])
        except FAILURES as exc:
            # Copied but not marked: delete them all the same (only a failed delete would copy again).
            return copied_before + moved, exc
        return copied_before + moved, None

    def _delete(self, messages: list[MessageTypeDef], result: BatchResult) -> None:
        for chunk in _chunks(messages, MAX_BATCH):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            try:
                response = self.sqs.delete_message_batch(QueueUrl=self.options.queue_url, Entries=entries)  # type: ignore[arg-type]
            except (BotoCoreError, ClientError) as exc:
                log.warning(
                    "deleting %d message(s) failed (%s); they reappear and are deduplicated", len(chunk), _short(exc)
                )
                continue
            for failed in response.get("Failed", []):
                log.warning(
                    "deleting message %s failed (%s); it reappears and is deduplicated",
                    chunk[int(failed["Id"])]["MessageId"], failed.get("Code"),
                )  # fmt: skip
            result.deleted.extend(chunk[int(ok["Id"])]["MessageId"] for ok in response.get("Successful", []))

    def _wait_for_redis(self, stop: threading.Event, failures: int) -> None:
        delay = _backoff(failures)
        while not stop.wait(delay):
            try:
                with redis_errors("waiting for Redis"):
                    self.store.ping()
                log.info("Redis answers again; resuming")
                return
            except FAILURES:
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _backoff(failures: int) -> float:
    return float(min(BACKOFF_START_SECONDS * 2 ** max(0, failures - 1), BACKOFF_MAX_SECONDS))


def _short(exc: BaseException) -> str:
    # Exception text of redis/botocore names hosts and codes, never credentials; keep log lines short.
    return f"{type(exc).__name__}: {str(exc)[:160]}"
