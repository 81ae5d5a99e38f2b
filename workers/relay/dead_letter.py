"""Copying invalid notifications to the dead-letter queue without ever wedging the relay.

A copy carries the original body plus attributes saying why it was refused. Copies are packed into
``send_message_batch`` calls of at most 10 entries and :data:`MAX_BATCH_BYTES` (SQS counts bodies and
attributes against one payload limit per batch). Should SQS still answer ``BatchRequestTooLong`` (a
lower limit than ours), each copy of that batch is sent alone. A copy that SQS refuses as invalid
(too large once our attributes are added) is sent once more as the bare body, its reason going to the
log only; if even that is refused, the message is left in the source queue for its redrive policy
and logged as an error. Every message costs at most three SQS calls: nothing here retries in a loop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from spreports.errors import InvalidNotification

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef, MessageTypeDef

log = logging.getLogger("spreports.relay")

MAX_BATCH_ENTRIES = 10
#: The payload limit of one SendMessageBatch: 256 KiB was SQS's limit for years and is still what
#: queues configured with the old maximum accept; staying under it is safe everywhere.
MAX_BATCH_BYTES = 256 * 1024
#: Our reason attribute is a short explanation; bound it so it never pushes a copy over the limit.
MAX_REASON_CHARS = 1000
_BATCH_TOO_LONG = frozenset({"BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong"})
# What SQS answers for a message over the queue's maximum size (among other malformed requests).
_REFUSED_MESSAGE = frozenset({"InvalidParameterValue", "MessageTooLong", "AWS.SimpleQueueService.MessageTooLong"})


@dataclass(frozen=True)
class DeadLetterCopy:
    """One invalid message and the copy of it to put on the dead-letter queue."""

    message: MessageTypeDef
    reason: InvalidNotification
    body: str
    attributes: dict[str, MessageAttributeValueTypeDef]

    @classmethod
    def of(cls, message: MessageTypeDef, reason: InvalidNotification) -> DeadLetterCopy:
        """The copy of ``message``: its body and the reason, kind, source id and receive count."""
        receive_count = message.get("Attributes", {}).get("ApproximateReceiveCount", "0")
        return cls(
            message=message,
            reason=reason,
            body=message.get("Body", ""),
            attributes={
                "reason": {"DataType": "String", "StringValue": str(reason)[:MAX_REASON_CHARS]},
                "kind": {"DataType": "String", "StringValue": reason.kind},
                "sourceMessageId": {"DataType": "String", "StringValue": message["MessageId"]},
                "approximateReceiveCount": {"DataType": "Number", "StringValue": receive_count},
            },
        )

    @property
    def message_id(self) -> str:
        """The source message's id."""
        return self.message["MessageId"]

    def size(self) -> int:
        """Bytes SQS counts for this copy: the body plus each attribute's name, type and value."""
        size = len(self.body.encode())
        for name, value in self.attributes.items():
            size += len(name.encode()) + len(value["DataType"].encode()) + len(value.get("StringValue", "").encode())
        return size


def pack(copies: Sequence[DeadLetterCopy]) -> list[list[DeadLetterCopy]]:
    """Group copies, in order, into batches of at most 10 entries and :data:`MAX_BATCH_BYTES`."""
    batches: list[list[DeadLetterCopy]] = []
    current: list[DeadLetterCopy] = []
    current_size = 0
    for copy in copies:
        size = copy.size()
        if current and (len(current) == MAX_BATCH_ENTRIES or current_size + size > MAX_BATCH_BYTES):
            batches.append(current)
            current, current_size = [], 0
        current.append(copy)
        current_size += size
    if current:
        batches.append(current)
    return batches


class DeadLetterer:
    """Copies invalid messages to one dead-letter queue."""

    def __init__(self, sqs: SQSClient, queue_url: str) -> None:
        self.sqs = sqs
        self.queue_url = queue_url

    def move(self, invalid: Sequence[tuple[MessageTypeDef, InvalidNotification]]) -> list[MessageTypeDef]:
        """Copy each message to the DLQ; return the messages now safe to delete from the source queue."""
        moved: list[MessageTypeDef] = []
        for batch in pack([DeadLetterCopy.of(message, reason) for message, reason in invalid]):
            moved.extend(copy.message for copy in self._send_batch(batch))
        return moved

    def _send_batch(self, batch: list[DeadLetterCopy]) -> list[DeadLetterCopy]:
        if len(batch) == 1:
            return [batch[0]] if self._send_one(batch[0]) else []
        entries = [
            {"Id": str(i), "MessageBody": copy.body, "MessageAttributes": copy.attributes}
            for i, copy in enumerate(batch)
        ]
        try:
            response = self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)  # type: ignore[arg-type]
        except ClientError as exc:
            if _code(exc) not in _BATCH_TOO_LONG:
                log.warning("dead-lettering %d message(s) failed (%s); left in the queue", len(batch), _code(exc))
                return []
            log.info("dead-letter batch of %d message(s) too long for SQS; sending them one by one", len(batch))
            return [copy for copy in batch if self._send_one(copy)]
        except BotoCoreError as exc:
            log.warning("dead-lettering %d message(s) failed (%s); left in the queue", len(batch), type(exc).__name__)
            return []
        sent: list[DeadLetterCopy] = []
        for done in response.get("Successful", []):
            copy = batch[int(done["Id"])]
            log.warning("message %s moved to the dead-letter queue: %s", copy.message_id, copy.reason)
            sent.append(copy)
        for failed in response.get("Failed", []):
            copy = batch[int(failed["Id"])]
            if failed.get("Code") in _REFUSED_MESSAGE:
                # Refused for its content (typically its size): the bare-body fallback may still fit.
                if self._send_one(copy):
                    sent.append(copy)
                continue
            log.warning("dead-lettering message %s failed (%s); left in the queue", copy.message_id, failed.get("Code"))
        return sent

    def _send_one(self, copy: DeadLetterCopy) -> bool:
        """Send one copy with its attributes, else (when refused as too large) the bare body; True when sent."""
        try:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=copy.body, MessageAttributes=copy.attributes)
        except ClientError as exc:
            if _code(exc) not in _REFUSED_MESSAGE:
                log.warning("dead-lettering message %s failed (%s); left in the queue", copy.message_id, _code(exc))
                return False
        except BotoCoreError as exc:
            log.warning("dead-lettering message %s failed (%s); left in the queue", copy.message_id, type(exc).__name__)
            return False
        else:
            log.warning("message %s moved to the dead-letter queue: %s", copy.message_id, copy.reason)
            return True
        # The original came through SQS, so its bare body usually fits; the reason then lives only in this log.
        try:
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=copy.body)
        except (BotoCoreError, ClientError) as exc:
            code = _code(exc) if isinstance(exc, ClientError) else type(exc).__name__
            log.error(
                "message %s (%d bytes) cannot be dead-lettered (%s); left in the queue for its redrive policy: %s",
                copy.message_id, copy.size(), code, copy.reason,
            )  # fmt: skip
            return False
        log.warning(
            "message %s moved to the dead-letter queue without its reason attributes (too large with them): %s",
            copy.message_id, copy.reason,
        )  # fmt: skip
        return True


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "unknown"))
