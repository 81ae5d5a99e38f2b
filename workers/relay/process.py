"""The relay process: settings -> clients -> receiver threads, signals, heartbeat and metrics.

``spreports relay`` and ``python -m spreports.workers.relay`` both end up in :func:`main`. SIGTERM or SIGINT
sets a stop event: each receiver finishes the batch in hand and the process exits 0 within the
long-poll wait plus one batch.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
import redis
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from spreports import logs
from spreports.connection import connect
from spreports.errors import ServiceUnavailable, SettingsError
from spreports.settings import Settings
from spreports.task_arguments import DocumentRequest
from spreports.tasks import signatures
from spreports.workers.embedded_redis import EmbeddedRedis, state_url
from spreports.workers.relay.metrics import Heartbeat, RelayCounters, fresh_heartbeats, serve_metrics, this_host
from spreports.workers.relay.receiver import Publish, Relay, RelayOptions

if TYPE_CHECKING:
    from celery import Celery
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger("spreports.relay")

HEARTBEAT_INTERVAL_SECONDS = 2.0
HEARTBEAT_TTL_SECONDS = 30
# A receiver that has not turned for this long beyond its long poll is stuck: stop the heartbeat.
STUCK_AFTER_SECONDS = 60.0


def celery_publisher(app: Celery) -> Publish:
    """Publish retrieval tasks through ``app``'s broker (its routing puts them on the ``documents`` queue)."""

    def publish(request: DocumentRequest) -> None:
        # A notification's task id derives from its id: a redelivered duplicate shows up under it in Flower.
        signatures.retrieval(app, request).apply_async(task_id=request.task_id)

    return publish


def sqs_client(options: RelayOptions, pool_size: int) -> SQSClient:
    """One SQS client for the process (create it in the main thread; threads may share it)."""
    session = boto3.session.Session()
    region = session.region_name or _region_of(options.queue_url)
    config = Config(
        connect_timeout=5,
        # A long poll holds the connection for WaitTimeSeconds; the read timeout must exceed it.
        read_timeout=options.wait_time_seconds + 20,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=max(10, pool_size + 2),
    )
    return session.client("sqs", region_name=region, config=config)


def _region_of(queue_url: str) -> str:
    # https://sqs.<region>.amazonaws.com/<account>/<name>; anything else (moto, LocalStack): us-east-1.
    host = urlsplit(queue_url).hostname or ""
    parts = host.split(".")
    return parts[1] if len(parts) >= 4 and parts[0] == "sqs" else "us-east-1"


def check_queue(sqs: SQSClient, options: RelayOptions) -> None:
    """Fail early when the queue cannot be reached; warn when invalid messages would cycle forever."""
    try:
        attributes = sqs.get_queue_attributes(QueueUrl=options.queue_url, AttributeNames=["RedrivePolicy"])
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(
            f"SPREPORTS_SQS__QUEUE_URL: the queue cannot be reached ({type(exc).__name__})"
        ) from None
    if options.dead_letter_queue_url is None and "RedrivePolicy" not in attributes.get("Attributes", {}):
        log.warning(
            "the queue has no redrive policy and SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL is unset: "
            "invalid messages will be received again after every visibility timeout"
        )


def run_relay(settings: Settings, stop: threading.Event, *, ready: threading.Event | None = None) -> None:
    """Run the relay until ``stop`` is set; a :class:`SpreportsError` says why it cannot start."""
    from spreports.workers.app import create_app

    options = RelayOptions.from_settings(settings)
    login = _metrics_login(settings)  # before anything: an open endpoint is refused at once
    url = state_url(settings)  # dedupe and heartbeats: the state Redis, whichever the broker
    receivers = settings.sqs.receivers
    sqs = sqs_client(options, receivers)
    check_queue(sqs, options)
    store = connect(url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30)
    app = create_app(settings)
    counters = RelayCounters()
    if settings.sqs.metrics_port is not None:
        server = serve_metrics(counters, settings.sqs.metrics_port, settings.sqs.metrics_host, login)
        log.info("metrics on %s port %d", settings.sqs.metrics_host, server.server_port)
    publish = celery_publisher(app)
    relays = [Relay(sqs, store, publish, options, counters) for _ in range(receivers)]
    heartbeat = Heartbeat(store, ttl_seconds=HEARTBEAT_TTL_SECONDS + options.wait_time_seconds)
    log.info("relaying %s with %d receiver(s)", options.queue_url, receivers)
    try:
        supervise(
            relays, stop, heartbeat, counters, stuck_after=options.wait_time_seconds + STUCK_AFTER_SECONDS, ready=ready
        )
    finally:
        app.close()
    log.info("relay stopped: %s", counters.snapshot())


def supervise(
    relays: Sequence[Relay],
    stop: threading.Event,
    heartbeat: Heartbeat,
    counters: RelayCounters,
    *,
    stuck_after: float,
    ready: threading.Event | None = None,
) -> None:
    """Run each relay in its thread; beat the heartbeat while every receiver turns; join them at stop."""
    now = time.monotonic()
    threads = []
    for index, relay in enumerate(relays):
        relay.last_turn = now
        thread = threading.Thread(target=relay.run, args=(stop,), name=f"relay-receiver-{index}", daemon=True)
        thread.start()
        threads.append(thread)
    if ready is not None:
        ready.set()
    while True:
        healthy = all(t.is_alive() for t in threads) and all(
            time.monotonic() - relay.last_turn < stuck_after for relay in relays
        )
        if healthy and not stop.is_set():
            try:
                heartbeat.beat(counters.snapshot())
            except (redis.RedisError, OSError) as exc:
                log.debug("heartbeat not written: %s", type(exc).__name__)
        if stop.wait(HEARTBEAT_INTERVAL_SECONDS):
            break
    for thread in threads:
        thread.join()
    with contextlib.suppress(redis.RedisError, OSError):
        heartbeat.clear()


def check(settings: Settings) -> tuple[bool, str]:
    """Whether a relay on this host has a fresh heartbeat (for container health checks)."""
    url = settings.state_redis_url
    if url is None:
        embedded = EmbeddedRedis(settings.data_dir)
        if not embedded.is_running():
            return False, "the embedded Redis is not running"
        url = embedded.url
    try:
        beats = fresh_heartbeats(connect(url, socket_timeout=5, socket_connect_timeout=5), host=this_host())
    except (redis.RedisError, OSError) as exc:
        return False, f"Redis does not answer ({type(exc).__name__})"
    if not beats:
        return False, f"no fresh relay heartbeat on {this_host()}"
    counts = beats[0].get("counters", {})
    return True, f"{len(beats)} relay(s) alive on {this_host()}; " + ", ".join(f"{k}={v}" for k, v in counts.items())


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask the relay to finish its batch and exit."""

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: finishing the batch in hand, then exiting", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def main(settings: Settings, *, check_only: bool = False) -> int:
    """``spreports relay [--check]``: run until SIGTERM/SIGINT (exit 0), or check the heartbeat (0 or 1)."""
    if check_only:
        ok, message = check(settings)
        print(message, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    # The workers' format (SPREPORTS_LOG_FORMAT), the ids of each notification, the redaction.
    logs.configure(settings.log_level, settings.log_format)
    stop = threading.Event()
    install_signal_handlers(stop)
    run_relay(settings, stop)
    return 0


def _metrics_login(settings: Settings) -> tuple[str, str] | None:
    """The login the relay's metrics ask for; a :class:`SettingsError` when they would be open beyond loopback."""
    from spreports.settings import basic_auth
    from spreports.workers.flower_security import is_loopback

    if settings.metrics_basic_auth is not None:
        return basic_auth(settings.metrics_basic_auth)
    if not is_loopback(settings.sqs.metrics_host):
        raise SettingsError(
            f"SPREPORTS_SQS__METRICS_HOST: the relay's metrics would listen on {settings.sqs.metrics_host} with no "
            "login: set SPREPORTS_METRICS_BASIC_AUTH=user:password (and basic_auth in Prometheus' scrape config)"
        )
    return None
