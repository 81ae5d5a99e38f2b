"""A tiny local stand-in for LWA and SP-API, for the client's tests only (not the product's simulator).

It answers what a test queued for a (method, path) and records every request it received, so tests
assert both what the client sent and what it made of the answer.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from tests.servers import free_port

TOKEN_PATH = "/auth/o2/token"


@dataclass(frozen=True)
class Answer:
    """One canned answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Seen:
    """One request the server received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    form: dict[str, str]
    at: float
    raw_uri: str = ""


class FakeAmazon:
    """LWA at ``/auth/o2/token`` plus canned SP-API answers, on a loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: list[Seen] = []
        self._answers: dict[tuple[str, str], list[Answer]] = {}
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self.token_lifetime = 3600
        self.token_delay = 0.0
        self.token_answers: list[Answer] = []
        self.handler: Callable[[Request], Answer] | None = None
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True)
        # shutdown() waits for serve_forever to look at its flag, every poll_interval (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)

    def on(self, method: str, path: str, *answers: Answer) -> None:
        """Answer requests to (method, path) with ``answers`` in order; the last one repeats."""
        with self._lock:
            self._answers[(method, path)] = list(answers)

    def requests_to(self, path: str) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path == path]

    def api_requests(self) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if s.path != TOKEN_PATH]

    def token_requests(self) -> list[Seen]:
        return self.requests_to(TOKEN_PATH)

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        raw = request.get_data(as_text=True)
        body = json.loads(raw) if raw and request.mimetype == "application/json" else None
        seen = Seen(
            method=request.method,
            path=request.path,
            query=dict(request.args.items()),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            form=dict(request.form.items()),
            at=time.time(),
            raw_uri=str(environ.get("REQUEST_URI") or environ.get("RAW_URI") or ""),
        )
        with self._lock:
            self.seen.append(seen)
        answer = self._token(seen) if request.path == TOKEN_PATH else self._api(request)
        if answer.delay:
            time.sleep(answer.delay)
        text = "" if answer.body is None else json.dumps(answer.body)
        headers = {"x-amzn-RequestId": f"req-{next(self._counter)}", **answer.headers}
        response = Response(text, status=answer.status, headers=headers, mimetype="application/json")
        return response(environ, start_response)

    def _token(self, seen: Seen) -> Answer:
        with self._lock:
            if self.token_answers:
                return self.token_answers.pop(0) if len(self.token_answers) > 1 else self.token_answers[0]
            n = len([s for s in self.seen if s.path == TOKEN_PATH])
        kind = "grantless" if seen.form.get("grant_type") == "client_credentials" else "seller"
        return Answer(
            body={"access_token": f"Atza|{kind}-{n}", "token_type": "bearer", "expires_in": self.token_lifetime},
            delay=self.token_delay,
        )

    def _api(self, request: Request) -> Answer:
        if self.handler is not None:
            return self.handler(request)
        with self._lock:
            queue = self._answers.get((request.method, request.path))
            if not queue:
                return Answer(404, {"errors": [{"code": "NotFound", "message": "no canned answer"}]})
            return queue.pop(0) if len(queue) > 1 else queue[0]
