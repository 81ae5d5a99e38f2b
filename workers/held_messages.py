"""Messages RabbitMQ holds in Celery's delay queues: neither ready nor unacknowledged, never delivered.

On RabbitMQ a countdown (a retry, a wait) travels through Celery's ``celery_delayed_<level>`` queues by
dead-lettering. A message whose dead-letter history says it already passed through a queue it is about
to enter is taken for a cycle, and a quorum queue with at-least-once dead-lettering (RabbitMQ before
4.0.1) keeps it for good: counted in the queue's ``messages``, but neither ``messages_ready`` nor
``messages_unacknowledged``. The product's own retries no longer carry that history; this finds what
older versions, or other programs' retries on the same vhost, left there.

AMQP does not show such messages (a passive declare counts ready ones only), so they are read from
RabbitMQ's management API: ``SPREPORTS_RABBITMQ_MANAGEMENT_URL``, by default the broker's host on port
15672 with the broker's user and password.
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit, urlunsplit

import requests

from spreports.errors import ServiceUnavailable, SettingsError

__all__ = ["DELAY_QUEUE_PREFIX", "MANAGEMENT_PORT", "STATISTICS_SECONDS", "held_in_delay_queues", "management_api"]

DELAY_QUEUE_PREFIX = "celery_delayed_"
MANAGEMENT_PORT = 15672
TIMEOUT_SECONDS = 5.0
#: RabbitMQ refreshes a queue's counts this often (``collect_statistics_interval``'s default), plus a margin.
STATISTICS_SECONDS = 5.5


def management_api(broker_url: str, management_url: str | None = None) -> tuple[str, tuple[str, str], str]:
    """The management API's base URL (no credentials), its user and password, and the broker's vhost.

    ``management_url`` (``http[s]://user:password@host:port``) overrides what is derived from the broker
    URL: ``amqps://`` gives ``https://``, the credentials are the broker's (``guest`` as RabbitMQ's default).
    """
    broker = urlsplit(broker_url)
    # kombu's reading of an AMQP URL: the path less its first slash is the vhost; none at all is "/".
    vhost = unquote(broker.path[1:]) if len(broker.path) > 1 else "/"
    if management_url:
        api = urlsplit(management_url)
        if api.scheme not in ("http", "https") or not api.hostname:
            raise SettingsError("SPREPORTS_RABBITMQ_MANAGEMENT_URL: needs http:// or https:// and a host")
        scheme, host, port = api.scheme, api.hostname, api.port
        # Credentials left out of the management URL are the broker's.
        user = api.username if api.username is not None else broker.username
        password = api.password if api.password is not None else broker.password
    else:
        scheme = "https" if broker.scheme == "amqps" else "http"
        host, port, user, password = broker.hostname or "localhost", MANAGEMENT_PORT, broker.username, broker.password
    netloc = f"[{host}]" if ":" in host else host
    base = urlunsplit((scheme, f"{netloc}:{port or MANAGEMENT_PORT}", "", "", ""))
    return base, (unquote(user or "guest"), unquote(password or "guest")), vhost


def held_in_delay_queues(
    broker_url: str, management_url: str | None = None, *, session: requests.Session | None = None
) -> dict[str, int]:
    """Per delay queue of the broker's vhost, how many messages RabbitMQ holds there (queues holding none left out).

    Raises :class:`ServiceUnavailable` when the management API does not answer, :class:`SettingsError` when
    it refuses the credentials; neither message carries a password.
    """
    base, auth, vhost = management_api(broker_url, management_url)
    columns = "name,messages,messages_ready,messages_unacknowledged"
    url = f"{base}/api/queues/{quote(vhost, safe='')}"
    try:
        get = session.get if session is not None else requests.get
        response = get(url, params={"columns": columns}, auth=auth, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        raise ServiceUnavailable(
            f"RabbitMQ's management API at {base} does not answer ({type(exc).__name__}): enable the "
            "rabbitmq_management plugin, or set SPREPORTS_RABBITMQ_MANAGEMENT_URL"
        ) from None
    if response.status_code in (401, 403):
        raise SettingsError(f"RabbitMQ's management API at {base} refused the broker's user ({response.status_code})")
    if response.status_code != 200:
        raise ServiceUnavailable(f"RabbitMQ's management API at {base} answered {response.status_code}")
    try:
        queues = response.json()
    except ValueError:
        raise ServiceUnavailable(f"RabbitMQ's management API at {base} answered something not JSON") from None
    if not isinstance(queues, list):
        raise ServiceUnavailable(f"RabbitMQ's management API at {base} answered no list of queues")
    held: dict[str, int] = {}
    for queue in queues:
        name = queue.get("name") if isinstance(queue, dict) else None
        if not isinstance(name, str) or not name.startswith(DELAY_QUEUE_PREFIX):
            continue
        # A queue's counts appear with its first statistics (every 5 s): a new queue may have none yet.
        count = _count(queue, "messages") - _count(queue, "messages_ready") - _count(queue, "messages_unacknowledged")
        if count > 0:
            held[name] = count
    return held


def _count(queue: dict[str, object], field: str) -> int:
    value = queue.get(field)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
