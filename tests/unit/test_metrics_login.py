"""The metrics endpoint's login: only the exact ``user:password`` of a ``Basic`` header passes."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from spreports.workers.metrics_server import require_login


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


HEADERS = {
    "none": (None, 401),
    "empty": ("", 401),
    "the right login": (basic("prometheus:s3cret-pass"), 200),
    "the scheme in lower case": ("basic " + basic("prometheus:s3cret-pass").split()[1], 200),
    "a wrong password": (basic("prometheus:s3cret-pasS"), 401),
    "the password's prefix": (basic("prometheus:s3cret-pas"), 401),
    "the password with more": (basic("prometheus:s3cret-pass2"), 401),
    "a wrong user": (basic("grafana:s3cret-pass"), 401),
    "no user": (basic(":s3cret-pass"), 401),
    "not base64": ("Basic !!!not-base64!!!", 401),
    "a bearer token": ("Bearer " + basic("prometheus:s3cret-pass").split()[1], 401),
}


@pytest.mark.parametrize("case", list(HEADERS))
def test_only_the_exact_login_reaches_the_metrics(case: str) -> None:
    header, status = HEADERS[case]
    served: list[str] = []

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        served.append(environ["PATH_INFO"])
        return [b"spreports_redis_up 1.0\n"]

    answered: list[str] = []
    headers: list[list[tuple[str, str]]] = []

    def start_response(line: str, sent: list[tuple[str, str]]) -> None:
        answered.append(line)
        headers.append(sent)

    environ = {"PATH_INFO": "/metrics", **({"HTTP_AUTHORIZATION": header} if header is not None else {})}
    body = b"".join(require_login(app, "prometheus", "s3cret-pass")(environ, start_response))
    assert int(answered[0].split()[0]) == status
    assert served == (["/metrics"] if status == 200 else [])
    if status == 401:
        assert ("WWW-Authenticate", 'Basic realm="spreports metrics"') in headers[0]
        assert b"spreports_" not in body
