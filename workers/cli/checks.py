"""What ``spreports check`` verifies: each thing a deployment needs, tried for real, with nothing changed.

Each check returns one line of what it found or raises an error of the product's tree saying why it
failed. The broker is only asked (an embedded Redis that is not running is not started), the storage
is probed without creating its folder or leaving a file, LWA is asked for a token that is cached
nowhere, the SQS queue is read (its attributes), the schedules file parsed.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import redis

    from spreports.settings import Settings

# A check waits this long for an answer at most, whatever the settings allow a worker.
CONNECT_TIMEOUT_SECONDS = 5.0
READ_TIMEOUT_SECONDS = 15.0


@dataclass(frozen=True)
class Outcome:
    """One check's verdict: ``detail`` says what was found, or why it failed."""

    name: str
    ok: bool
    detail: str
    #: Passed, but could not see everything it looks at (``detail`` says what and why).
    partial: bool = False

    def line(self) -> str:
        """``ok    name: detail``, ``warn  name: detail`` (partial) or ``FAIL  name: detail``."""
        verdict = "FAIL" if not self.ok else "warn" if self.partial else "ok"
        return f"{verdict:<5} {self.name}: {self.detail}"


@dataclass(frozen=True)
class BrokerFound:
    """The broker check's verdict, and the URL of the state Redis that answered (None: none was asked)."""

    detail: str
    url: str | None


def run(name: str, check: Callable[[], str]) -> Outcome:
    """Run one check; an error of the product's tree is a failure with its message as the reason."""
    from spreports.errors import SpreportsError

    try:
        return Outcome(name, True, check())
    except SpreportsError as exc:
        return Outcome(name, False, str(exc))


def run_broker(settings: Settings) -> tuple[Outcome, str | None]:
    """The broker check, and the URL of the Redis that answered (None: failed, or none running to ask)."""
    found: list[BrokerFound] = []

    def check() -> str:
        found.append(broker(settings))
        return found[0].detail

    outcome = run("broker", check)
    return outcome, found[0].url if found else None


def broker(settings: Settings) -> BrokerFound:
    """The configured broker and Redis (and result store) answer; the embedded Redis answers or could be started."""
    from spreports.connection import ping, safe_url
    from spreports.workers.embedded_redis import EmbeddedRedis

    if settings.broker_is_amqp and settings.broker_url and settings.redis_url:
        amqp_answers(settings.broker_url)
        ping(settings.redis_url)
        detail = f"RabbitMQ at {safe_url(settings.broker_url)} answers; Redis at {safe_url(settings.redis_url)} answers"
        if settings.result_backend and settings.result_backend != settings.redis_url:
            ping(settings.result_backend)
            detail += f"; the result store at {safe_url(settings.result_backend)} answers"
        return BrokerFound(detail, settings.redis_url)
    if settings.state_redis_url:
        state = settings.state_redis_url
        ping(state)
        detail = f"Redis at {safe_url(state)} answers"
        for what, url in (("the broker", settings.broker_url), ("the result store", settings.result_backend)):
            if url and url != state:
                ping(url)
                detail += f"; {what} at {safe_url(url)} answers"
        return BrokerFound(detail, state)
    embedded = EmbeddedRedis(settings.data_dir)
    if embedded.is_running():
        return BrokerFound(f"the embedded Redis in {embedded.data_dir} answers", embedded.url)
    from spreports.errors import RedisUnavailable

    reason = embedded.startable()
    if reason is not None:
        raise RedisUnavailable(reason)
    return BrokerFound(
        f"no SPREPORTS_BROKER_URL: the embedded Redis is not running; the first process that needs it "
        f"starts it in {embedded.data_dir}",
        None,
    )


def amqp_answers(url: str) -> None:
    """The AMQP broker at ``url`` accepts a connection (login included), or :class:`ServiceUnavailable`."""
    from kombu import Connection

    from spreports.connection import safe_url
    from spreports.errors import ServiceUnavailable

    try:
        with Connection(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # kombu raises its own, amqp's and socket errors alike
        raise ServiceUnavailable(f"the broker at {safe_url(url)} does not answer: {type(exc).__name__}") from None


def delay_queues(settings: Settings) -> Outcome:
    """On RabbitMQ: no task message is held for good in Celery's delay queues (:mod:`spreports.workers.held_messages`).

    Held messages fail the check with their count. A management API that does not answer is a warning:
    the held messages cannot be seen, nothing is known to be wrong.
    """
    from spreports.errors import ServiceUnavailable, SpreportsError
    from spreports.workers.held_messages import STATISTICS_SECONDS, held_in_delay_queues

    assert settings.broker_url is not None
    name = "delay queues"
    try:
        held = held_in_delay_queues(settings.broker_url, settings.rabbitmq_management_url)
        if held:
            # A message being dead-lettered at the moment of the statistics counts too: held is what stays.
            time.sleep(STATISTICS_SECONDS)
            again = held_in_delay_queues(settings.broker_url, settings.rabbitmq_management_url)
            held = {queue: min(count, again[queue]) for queue, count in held.items() if queue in again}
    except ServiceUnavailable as exc:
        return Outcome(name, True, f"not seen: {exc}", partial=True)
    except SpreportsError as exc:
        return Outcome(name, False, str(exc))
    if not held:
        return Outcome(name, True, "no task message held in RabbitMQ's delay queues")
    where = ", ".join(f"{queue}: {count}" for queue, count in sorted(held.items()))
    return Outcome(
        name,
        False,
        f"{sum(held.values())} task message(s) held for good in RabbitMQ's delay queues ({where}): RabbitMQ took "
        "their retries' dead-letter history for a cycle and will never deliver them; the documents they "
        "carried are queued again by beat's requeue task",
    )


def storage(settings: Settings) -> str:
    """The storage accepts writes: a probe written and removed, or the folder a worker would create."""
    from spreports.storage import open_storage
    from spreports.storage.local import LocalStorage
    from spreports.workers.cli.common import check_storage

    opened = open_storage(settings)
    if not isinstance(opened, LocalStorage) or opened.root.is_dir():
        check_storage(settings)  # writes a probe and removes it
        return f"{settings.storage.url} is writable"
    return _creatable(opened.root)


def _creatable(root: Path) -> str:
    """A storage folder that does not exist yet: its nearest existing parent must take a new entry."""
    from spreports.errors import StorageError

    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError
        # Created and removed at once: proves the right to create the folder without creating it.
        with tempfile.TemporaryDirectory(dir=existing, prefix=".spreports-check-"):
            pass
    except OSError:
        raise StorageError(f"SPREPORTS_STORAGE__URL: {root} is not a writable directory") from None
    return f"{root} does not exist yet; {existing} is writable, so the first document creates it"


def credential_checks(settings: Settings) -> list[tuple[str, Callable[[], str]]]:
    """One check per configured seller: LWA gives an access token for its refresh token."""
    from spreports.errors import AuthenticationError, SettingsError

    lwa = settings.lwa
    if not lwa.client_id or lwa.client_secret is None or not lwa.client_secret.get_secret_value():
        return [("credentials", _fail(AuthenticationError("no LWA client: set SPREPORTS_LWA__CLIENT_ID and "
                                                           "SPREPORTS_LWA__CLIENT_SECRET")))]  # fmt: skip
    try:
        sellers = settings.sellers()
    except SettingsError as exc:
        return [("credentials", _fail(exc))]
    if not sellers:
        return [("credentials", _fail(AuthenticationError(
            "no seller: set SPREPORTS_SELLER_ID and SPREPORTS_LWA__REFRESH_TOKEN, or SPREPORTS_SELLERS_FILE")))]  # fmt: skip
    return [(f"credentials {seller_id}", _token_call(settings, seller_id)) for seller_id in sellers]


def _token_call(settings: Settings, seller_id: str) -> Callable[[], str]:
    def check() -> str:
        import requests

        from spreports.spapi.lwa import LwaClient, LwaCredentials

        lwa = settings.lwa
        assert lwa.client_id is not None and lwa.client_secret is not None  # checked by credential_checks
        credentials = LwaCredentials(client_id=lwa.client_id, client_secret=lwa.client_secret, token_url=lwa.token_url)
        timeout = (
            min(settings.spapi.connect_timeout, CONNECT_TIMEOUT_SECONDS),
            min(settings.spapi.read_timeout, READ_TIMEOUT_SECONDS),
        )
        # The token is not kept: a check changes nothing, not even the token cache. A refusal is this
        # check's FAIL line, not also a log line.
        with requests.Session() as session, _quiet("spreports.spapi.lwa"):
            LwaClient(credentials, session, timeout).refresh_token_grant(
                settings.sellers()[seller_id].refresh_token, who=f"seller {seller_id}"
            )
        return f"LWA gave an access token for seller {seller_id}"

    return check


#: Settings only the relay uses: one of them set means a relay is meant to run, and it needs the queue.
RELAY_SETTINGS = {"dead_letter_queue_url": "SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL",
                  "metrics_port": "SPREPORTS_SQS__METRICS_PORT"}  # fmt: skip


def queue(settings: Settings) -> str:
    """The notifications queue (and the dead-letter queue, when set) answer to the relay's credentials.

    No queue is fine for a deployment without notifications (requests, schedules and the sweep work
    without): unless a relay-only setting says a relay is meant to run.
    """
    from spreports.errors import SettingsError
    from spreports.workers.relay.process import sqs_client
    from spreports.workers.relay.receiver import RelayOptions

    if not settings.sqs.queue_url:
        wanted = [variable for name, variable in RELAY_SETTINGS.items() if getattr(settings.sqs, name) is not None]
        if wanted:
            raise SettingsError(f"SPREPORTS_SQS__QUEUE_URL: not set, but {wanted[0]} is: the relay needs the queue")
        return (
            "no SPREPORTS_SQS__QUEUE_URL: no notifications are relayed; documents come from requests and the "
            "15-minute sweep (optional)"
        )
    options = RelayOptions.from_settings(settings)
    sqs = sqs_client(options, 1)
    waiting = _queue_depth(sqs, options.queue_url, "SPREPORTS_SQS__QUEUE_URL")
    detail = f"SQS queue {_queue_name(options.queue_url)} answers ({waiting} messages waiting)"
    if options.dead_letter_queue_url:
        dead = _queue_depth(sqs, options.dead_letter_queue_url, "SPREPORTS_SQS__DEAD_LETTER_QUEUE_URL")
        detail += f"; dead-letter queue {_queue_name(options.dead_letter_queue_url)} answers ({dead} messages)"
    return detail


def _queue_depth(sqs: object, url: str, variable: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    from spreports.errors import ServiceUnavailable

    try:
        answer = sqs.get_queue_attributes(  # type: ignore[attr-defined]
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ServiceUnavailable(f"{variable}: SQS refused to read the queue ({code})") from None
    except BotoCoreError as exc:
        raise ServiceUnavailable(f"{variable}: the queue cannot be reached ({type(exc).__name__})") from None
    return str(answer.get("Attributes", {}).get("ApproximateNumberOfMessages", "?"))


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def schedules(settings: Settings) -> str:
    """The schedules file, when set, reads and holds valid entries."""
    from spreports.schedules import load_schedules_file

    path = settings.schedules_file
    if path is None:
        return "no SPREPORTS_SCHEDULES_FILE: no schedules or periodic requests are kept (optional)"
    loaded = load_schedules_file(path)
    return f"{path}: {len(loaded.schedules)} schedule(s), {len(loaded.requests)} periodic request(s)"


#: Beat queues the requeue task every 15 s; when its last pass is older than this, nothing re-drives lost work.
REQUEUE_STALE_SECONDS = 5 * 60


def recovery_warning(client: redis.Redis, now: float | None = None) -> str | None:
    """A warning when the requeue task (beat's, on a worker of the control queue) has not run lately: documents
    whose worker died or whose message the broker lost are then re-driven by nothing but the slow sweep."""
    import time

    from spreports.documents.inflight import InFlight

    last = InFlight(client).last_pass()
    advice = ("documents whose worker dies or whose task message the broker loses are not re-driven: run one "
              "`spreports beat` and a worker on the control queue")  # fmt: skip
    if last is None:
        return f"the requeue task has never run ({advice})"
    age = (time.time() if now is None else now) - last
    if age > REQUEUE_STALE_SECONDS:
        return f"the requeue task last ran {age / 60:.0f} min ago ({advice})"
    return None


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The logger ``name`` says only errors while the block runs."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _fail(error: Exception) -> Callable[[], str]:
    def check() -> str:
        raise error

    return check


#: What each role's Redis holds: what its loss costs.
_HELD = {
    "broker": "queued tasks",
    "state": "claims, rate limits, token caches, dedupe marks and the failure ledger",
}


def redis_roles(settings: Settings, answered: str | None) -> dict[str, list[tuple[str, str]]]:
    """The deployment's Redis servers, each with its roles and their URLs: ``{server: [(role, url), ...]}``.

    ``answered``: the state Redis that answered the broker check (the embedded one when nothing is set).
    A server is a host and port (or a socket): persistence is a server's, whatever the database number.
    """
    from spreports.connection import safe_url

    state = settings.state_redis_url or answered
    # RabbitMQ holds the tasks itself (durable quorum queues); unset, the broker is the state Redis.
    broker = None if settings.broker_is_amqp else (settings.broker_url or state)
    servers: dict[str, list[tuple[str, str]]] = {}
    for role, url in (("broker", broker), ("state", state)):
        if url is not None:
            servers.setdefault(safe_url(url), []).append((role, url))
    return servers


def persistence_warnings(settings: Settings, answered: str | None) -> list[str]:
    """One warning per Redis server whose crash or restart would lose what its roles hold (nothing kept on disk,
    or only snapshots: their window named). A server that does not answer has its FAIL line already."""
    from spreports.connection import persistence_warning
    from spreports.errors import RedisUnavailable

    warnings = []
    for roles in redis_roles(settings, answered).values():
        names = [role for role, _ in roles]
        role = f"the {' and '.join(names)} Redis"
        lost = ", ".join(_HELD[name] for name in names)
        try:
            warning = persistence_warning(roles[0][1], role=role, lost=lost)
        except RedisUnavailable:
            continue
        if warning is not None:
            warnings.append(warning)
    return warnings
