"""Every Redis key the product writes: one registry of key families (prefix, shape, what it holds, its TTL).

Modules build their keys from these prefixes and nowhere else spell a ``spreports:`` key (a unit test
reads the package's sources to keep it so); the README's table of Redis keys is checked against
:data:`FAMILIES`. The prefixes are what deployments hold today: changing one strands their data.

Celery's and kombu's own keys (``celery-task-meta-*``, ``unacked``, ``_kombu.binding.*``, the queues)
are theirs and not listed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeyFamily:
    """One family of Redis keys: the prefix every key of it starts with, its full shape, what it holds, its TTL."""

    #: The first characters of every key of the family, byte for byte as written.
    prefix: str
    #: The whole key, ``<placeholders>`` for its variable parts.
    pattern: str
    #: What the key holds (its Redis type and meaning).
    holds: str
    #: How long it lives, or ``none: <why>``.
    ttl: str

    def __post_init__(self) -> None:
        if not self.pattern.startswith(self.prefix):
            raise ValueError(f"key pattern {self.pattern!r} does not start with its prefix {self.prefix!r}")


# --- documents ---------------------------------------------------------------------------------------
DOCUMENT_CLAIM = KeyFamily(
    "spreports:claim:document",
    "spreports:claim:document:<seller>:<reportDocumentId>",
    "string: the worker retrieving the document (one at a time)",
    "SPREPORTS_DOCUMENTS__CLAIM_TTL_SECONDS, renewed while it works",
)
IN_FLIGHT = KeyFamily(
    "spreports:inflight",
    "spreports:inflight",
    "hash <seller>:<document>: the task's arguments, when it is due back, re-drives",
    "none: an entry leaves when its document is stored or in the failure ledger",
)
REQUEUE_HEARTBEAT = KeyFamily(
    "spreports:inflight:requeued_at",
    "spreports:inflight:requeued_at",
    "string: when the requeue task last ran (epoch seconds), read by `spreports check`",
    "none: one key, overwritten each run",
)
FAILURE_LEDGER = KeyFamily(
    "spreports:failed",
    "spreports:failed",
    "hash <seller>:<document>: a document that failed for good, its reason and when",
    "none: an entry stays until the document is stored",
)
# --- metrics -----------------------------------------------------------------------------------------
METRICS_COUNTERS = KeyFamily(
    "spreports:metrics:counters",
    "spreports:metrics:counters",
    "hash: the workers' counters, one field per counter and label",
    "none: Prometheus counters only grow",
)
METRICS_SECONDS = KeyFamily(
    "spreports:metrics:document_seconds",
    "spreports:metrics:document_seconds",
    "hash: the retrieval-time histogram, one field per bucket",
    "none: Prometheus counters only grow",
)
# --- FATAL reports and cooldowns ---------------------------------------------------------------------
FATAL_COUNTS = KeyFamily(
    "spreports:fatal:",
    "spreports:fatal:<reportType>",
    "hash: FATAL reports seen (`count`), the last one's reason, report and seller",
    "none: a counter since the start",
)
FATAL_REASON = KeyFamily(
    "spreports:fatal:report:",
    "spreports:fatal:report:<seller>:<reportId>",
    "string: the reason of one FATAL report",
    "30 days",
)
FATAL_POLLS = KeyFamily(
    "spreports:fatal-polls:",
    "spreports:fatal-polls:<seller>:<reportId>",
    "counter: polls for a FATAL report's error document",
    "1 hour",
)
COOLDOWN = KeyFamily(
    "spreports:cooldown:",
    "spreports:cooldown:<seller>:<reportType>:<options digest>",
    "string: when the cooldown after a FATAL report ends (epoch seconds)",
    "the cooldown's length",
)
COOLDOWN_STARTED = KeyFamily(
    "spreports:cooldown-started:",
    "spreports:cooldown-started:<seller>:<reportId>",
    "mark: this FATAL report started a cooldown already",
    "the cooldown's length",
)
# --- report requests ---------------------------------------------------------------------------------
REPORT_REQUEST = KeyFamily(
    "spreports:report-request:",
    "spreports:report-request:<request fingerprint>",
    "string: the pending mark of a request being made, or the reportId answering it",
    "15 minutes pending; then 24 hours plus the window a finished report is reused",
)
REPORT_MADE = KeyFamily(
    "spreports:report-made:",
    "spreports:report-made:<seller>:<reportId>",
    "string: the request (JSON) of a report spreports created",
    "90 days",
)
LAST_REQUEST = KeyFamily(
    "spreports:requests:last:",
    "spreports:requests:last:<request fingerprint>",
    "string: the last reportId of a request, for restatements",
    "90 days",
)
SUPERSEDES = KeyFamily(
    "spreports:supersedes:",
    "spreports:supersedes:<seller>:<reportId>",
    "string: the document a restated report's document supersedes",
    "90 days",
)
REQUEST_PERIOD = KeyFamily(
    "spreports:requests:period:",
    "spreports:requests:period:<entry>:<seller>:<period start>",
    "mark: a schedule entry's period was requested for a seller",
    "the period, plus the restatement delay when there is one",
)
SCHEDULES = KeyFamily(
    "spreports:schedules:",
    "spreports:schedules:<sync-lock, sync-queued or applied>",
    "the schedule sync's lock, its queued mark, and the last sync (hash: digest, at)",
    "lock and mark: 10 minutes; applied: none, the last sync decides the next",
)
# --- stuck reports -----------------------------------------------------------------------------------
STUCK_COUNTS = KeyFamily(
    "spreports:stuck:",
    "spreports:stuck:<reportType>",
    "hash: stuck reports seen (`in_queue`, `in_progress`, `not_ours`, ...)",
    "none: a counter since the start",
)
STUCK_REQUEUED = KeyFamily(
    "spreports:stuck:requeued:",
    "spreports:stuck:requeued:<seller>:<reportId>",
    "mark: a stuck report was requested again (or is its replacement)",
    "6 hours while pending; 90 days once replaced",
)
STUCK_REPLACED = KeyFamily(
    "spreports:stuck:replaced-by:",
    "spreports:stuck:replaced-by:<seller>:<reportId>",
    "string: the reportId replacing a stuck report, or a pending mark",
    "6 hours while pending; 90 days once replaced",
)
# --- backfills ---------------------------------------------------------------------------------------
BACKFILL_PROGRESS = KeyFamily(
    "spreports:backfill:",
    "spreports:backfill:<planId>",
    "hash <window>: each window's state (report, document, location)",
    "90 days",
)
BACKFILL_QUEUED = KeyFamily(
    "spreports:backfill:",
    "spreports:backfill:<planId>:queued:<window>",
    "mark: a window's document was queued",
    "1 hour",
)
BACKFILL_LEASE = KeyFamily(
    "spreports:backfill:",
    "spreports:backfill:<planId>:run",
    "string: the run driving the backfill, when it comes back",
    "its hold and grace, plus 24 hours",
)
# --- the sweep ---------------------------------------------------------------------------------------
SWEEP_QUEUED = KeyFamily(
    "spreports:sweep:queued:",
    "spreports:sweep:queued:<seller>:<reportDocumentId>",
    "mark: the sweep queued this document",
    "1 hour",
)
STALE_PARTS_FULL_SCAN = KeyFamily(
    "spreports:sweep:stale-parts-full-scan",
    "spreports:sweep:stale-parts-full-scan",
    "mark: the day's full scan for unfinished writes ran",
    "24 hours",
)
# --- SP-API quotas and tokens ------------------------------------------------------------------------
TOKEN = KeyFamily(
    "spreports:token",
    "spreports:token:<cache>",
    "string: a sealed LWA or restricted-data token, and `:lock` while one process refreshes it",
    "the token's usable lifetime; the lock 30 seconds",
)
RATE_LIMIT = KeyFamily(
    "spreports:ratelimit",
    "spreports:ratelimit:<region>:<seller>:<operation>",
    "hash: one operation's token bucket (tokens, ts, rate, burst)",
    "until the bucket is full again, plus 60 seconds",
)
APP_LIMIT = KeyFamily(
    "spreports:applimit",
    "spreports:applimit:<region>:<reportType>[:line, :seen or :day:<YYYYMMDD>]",
    "an application-wide limit: its bucket, the sellers' line, their last visits, the day's count",
    "a few periods of the limit; the day's count 2 days",
)
TYPE_BACKOFF = KeyFamily(
    "spreports:type-backoff",
    "spreports:type-backoff:<region>:<seller or app>:<reportType>[:strikes]",
    "string: a throttled report type's back-off, and its 429s in a row",
    "the back-off left; strikes 2 hours",
)
# --- the SQS relay -----------------------------------------------------------------------------------
RELAY_NOTIFICATION = KeyFamily(
    "spreports:relay:notification:",
    "spreports:relay:notification:<notificationId>",
    "string: `claimed` while a relay handles the notification, then `done`",
    "the visibility timeout while claimed; 15 days done",
)
RELAY_MESSAGE = KeyFamily(
    "spreports:relay:message:",
    "spreports:relay:message:<SQS MessageId>",
    "string: an invalid message being (or already) moved to the dead-letter queue",
    "the visibility timeout while claimed; 15 days done",
)
RELAY_HEARTBEAT = KeyFamily(
    "spreports:relay:heartbeat:",
    "spreports:relay:heartbeat:<host>:<pid>",
    "string: a live relay process's counters (JSON)",
    "30 seconds plus the SQS wait, rewritten while healthy",
)

#: Every family, in the order of the README's table.
FAMILIES: tuple[KeyFamily, ...] = (
    DOCUMENT_CLAIM,
    IN_FLIGHT,
    REQUEUE_HEARTBEAT,
    FAILURE_LEDGER,
    METRICS_COUNTERS,
    METRICS_SECONDS,
    FATAL_COUNTS,
    FATAL_REASON,
    FATAL_POLLS,
    COOLDOWN,
    COOLDOWN_STARTED,
    REPORT_REQUEST,
    REPORT_MADE,
    LAST_REQUEST,
    SUPERSEDES,
    REQUEST_PERIOD,
    SCHEDULES,
    STUCK_COUNTS,
    STUCK_REQUEUED,
    STUCK_REPLACED,
    BACKFILL_PROGRESS,
    BACKFILL_QUEUED,
    BACKFILL_LEASE,
    SWEEP_QUEUED,
    STALE_PARTS_FULL_SCAN,
    TOKEN,
    RATE_LIMIT,
    APP_LIMIT,
    TYPE_BACKOFF,
    RELAY_NOTIFICATION,
    RELAY_MESSAGE,
    RELAY_HEARTBEAT,
)
