"""Reading the messages RabbitMQ holds in Celery's delay queues from its management API (a fake session)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from spreports.errors import ServiceUnavailable, SettingsError
from spreports.settings import Settings
from spreports.workers.held_messages import held_in_delay_queues, management_api


class FakeResponse:
    def __init__(self, status_code: int, body: Any) -> None:
        self.status_code = status_code
        self.body = body

    def json(self) -> Any:
        if isinstance(self.body, Exception):
            raise self.body
        return self.body


class FakeSession:
    """Answers every GET with one response (or raises), and keeps what it was asked."""

    def __init__(self, answer: FakeResponse | Exception) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get(self, url: str, **kwargs: Any) -> FakeResponse:
        self.calls.append((url, kwargs))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("broker", "override", "expected"),
    [
        ("amqp://app:s3cret@rabbit:5672/prod", None, ("http://rabbit:15672", ("app", "s3cret"), "prod")),
        ("amqps://app:s3cret@rabbit:5671/", None, ("https://rabbit:15672", ("app", "s3cret"), "/")),
        ("amqp://rabbit//", None, ("http://rabbit:15672", ("guest", "guest"), "/")),
        ("amqp://a%40b:p%2Fw@rabbit/v%2Fh", None, ("http://rabbit:15672", ("a@b", "p/w"), "v/h")),
        ("amqp://app:s3cret@rabbit/prod", "https://mgmt.example:443", ("https://mgmt.example:443", ("app", "s3cret"), "prod")),
        ("amqp://app:s3cret@rabbit/prod", "http://ops:pw@mgmt:8080", ("http://mgmt:8080", ("ops", "pw"), "prod")),
        ("amqp://app:s3cret@[::1]/prod", None, ("http://[::1]:15672", ("app", "s3cret"), "prod")),
    ],
)  # fmt: skip
def test_the_api_is_the_brokers_host_and_user_unless_told(
    broker: str, override: str | None, expected: tuple[str, tuple[str, str], str]
) -> None:
    assert management_api(broker, override) == expected


QUEUES = [
    {"name": "celery_delayed_0", "messages": 4, "messages_ready": 4, "messages_unacknowledged": 0},
    {"name": "celery_delayed_3", "messages": 7, "messages_ready": 2, "messages_unacknowledged": 0},
    {"name": "celery_delayed_5", "messages": 1, "messages_ready": 0, "messages_unacknowledged": 0},
    {"name": "documents", "messages": 9, "messages_ready": 1, "messages_unacknowledged": 0},  # not a delay queue
    {"name": "celery_delayed_7"},  # no statistics yet
]


def test_held_is_what_is_neither_ready_nor_unacknowledged_in_the_delay_queues() -> None:
    session = FakeSession(FakeResponse(200, QUEUES))
    held = held_in_delay_queues("amqp://app:s3cret@rabbit/a%2Fb", session=session)  # type: ignore[arg-type]
    assert held == {"celery_delayed_3": 5, "celery_delayed_5": 1}
    [(url, kwargs)] = session.calls
    assert url == "http://rabbit:15672/api/queues/a%2Fb"
    assert kwargs["auth"] == ("app", "s3cret")


@pytest.mark.parametrize(
    ("answer", "error", "text"),
    [
        (requests.ConnectionError("refused s3cret"), ServiceUnavailable, "does not answer (ConnectionError)"),
        (FakeResponse(401, {}), SettingsError, "refused the broker's user (401)"),
        (FakeResponse(503, {}), ServiceUnavailable, "answered 503"),
        (FakeResponse(200, ValueError("not json")), ServiceUnavailable, "not JSON"),
        (FakeResponse(200, {"error": "x"}), ServiceUnavailable, "no list of queues"),
    ],
)
def test_an_api_that_cannot_tell_is_an_error_without_the_password(
    answer: FakeResponse | Exception, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=re.escape(text)) as raised:
        held_in_delay_queues("amqp://app:s3cret@rabbit/prod", session=FakeSession(answer))  # type: ignore[arg-type]
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize("value", ["ftp://rabbit:15672", "rabbit:15672", "http://"])
def test_a_management_url_that_is_not_http_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="needs http:// or https:// and a host"):
        Settings(_env_file=None, rabbitmq_management_url=value)
