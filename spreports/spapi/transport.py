"""One SP-API call: rate limit, token, HTTP, error mapping, retries.

:class:`Transport` sends a request for an :class:`Operation` and returns the successful
``requests.Response`` or raises from the exception tree. Per attempt it draws one token from the
fleet's bucket, puts the access token in ``x-amz-access-token`` and sends the request with explicit
connect/read timeouts on a pooled session. 429, 500, 502, 503, 504 and connection errors are retried
with exponential backoff and full jitter, bounded in attempts and in total time; other 4xx raise at
once. A 401/403 saying the token expired drops the token and retries once with a fresh one.

Operations that are not idempotent (``createReport`` and friends: a repeat makes a second resource)
are retried only when Amazon surely did not act: the connection was never made, or it answered 429
or 503. A read timeout, a dropped connection or a 500/502/504 on them raises ``ServiceUnavailable``
at once, so the caller (which can look for the resource first) decides whether to try again.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from requests.utils import get_environ_proxies

from spreports.errors import (
    Conflict,
    ErrorDetail,
    InvalidRequest,
    NotFound,
    OutcomeUnknown,
    RateLimited,
    ServiceUnavailable,
    SpreportsError,
    UnexpectedResponse,
)
from spreports.spapi.operations import Operation
from spreports.spapi.ratelimit import RateLimiter
from spreports.spapi.tokens import TokenSource

log = logging.getLogger(__name__)

USER_AGENT = f"spreports/{version('spreports')} (Language=Python)"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Answers that say Amazon did not act on the request, so even a non-idempotent one may be repeated.
UNPROCESSED_STATUSES = frozenset({429, 503})
_POOL_SIZE = 32
#: What a refused body means, said plainly: a repeat of the same body is refused again (permanent).
REFUSED_BODY_HINTS = {
    413: "the request body is larger than Amazon accepts; the same request will be refused again",
    415: "Amazon accepts only JSON bodies (Content-Type application/json); the same request will be refused again",
}

_session_lock = threading.Lock()
_session: tuple[int, requests.Session] | None = None
#: Origins whose proxy answer a :class:`ProcessSession` keeps (a few: SP-API, LWA, the document hosts).
_MAX_ORIGINS = 64


class ProcessSession(requests.Session):
    """A session that consults the environment (proxies, ``no_proxy``, CA bundle) once per origin.

    With ``trust_env`` (the default) requests reads the proxy variables again for every request, walking
    the whole environment two or three times: a measurable part of the CPU a worker spends on a small
    document. A process's environment does not change while it runs (its settings are read once too),
    so the answer for each origin is kept; what requests does with it is unchanged.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environ_proxies: dict[tuple[Any, str | None], dict[str, str]] = {}
        self._ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        """:meth:`requests.Session.merge_environment_settings`, the environment's part looked up once."""
        if not self.trust_env:
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        if proxies is not None:
            for key, value in self._proxies_of(url, proxies.get("no_proxy")).items():
                proxies.setdefault(key, value)
        if verify is True or verify is None:
            verify = self._ca_bundle or verify
        given = {"proxies": proxies, "stream": stream, "verify": verify, "cert": cert}
        return {name: merge_setting(value, getattr(self, name)) for name, value in given.items()}  # type: ignore[no-untyped-call]

    def _proxies_of(self, url: Any, no_proxy: str | None) -> dict[str, str]:
        # Whether a URL bypasses the proxies depends on its host and port only.
        key = (urlsplit(url).netloc, no_proxy)
        found = self._environ_proxies.get(key)
        if found is None:
            if len(self._environ_proxies) >= _MAX_ORIGINS:
                self._environ_proxies.clear()
            found = self._environ_proxies[key] = get_environ_proxies(url, no_proxy=no_proxy)
        return found


def default_session() -> requests.Session:
    """This process's pooled session (a new one after a fork: sockets must not be shared)."""
    global _session
    with _session_lock:
        if _session is None or _session[0] != os.getpid():
            session = ProcessSession()
            adapter = HTTPAdapter(pool_connections=8, pool_maxsize=_POOL_SIZE, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _session = (os.getpid(), session)
        return _session[1]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a call is retried: full-jitter exponential backoff."""

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_total: float = 60.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """The sleep after failed attempt ``attempt`` (1-based): uniform in [0, min(cap, base * 2^(n-1))]."""
        ceiling: float = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return rand() * ceiling


@dataclass(frozen=True)
class CallContext:
    """Who a call is for: names the seller in logs and errors, and picks the rate bucket."""

    seller: str
    region: str


@dataclass
class Transport:
    """Sends SP-API requests for one base URL with rate limiting and retries."""

    base_url: str
    session: requests.Session
    limiter: RateLimiter
    timeout: tuple[float, float]
    max_wait: float = 5.0
    #: How far ahead a caller that can come back later (a task) reserves its turn; 0: no reservation.
    reserve_horizon: float = 0.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    rand: Callable[[], float] = random.random

    def call(
        self,
        operation: Operation,
        context: CallContext,
        auth: TokenSource,
        *,
        path_params: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        own_throttle: bool = False,
    ) -> requests.Response:
        """Send the request (retrying as the policy allows) and return the 2xx response.

        ``own_throttle``: a 429 applies to a narrower scope than the operation's bucket (one report type),
        which the caller backs off itself: it is raised at once, neither retried nor drained from the
        bucket the caller's other requests share.
        """
        url = self.base_url + operation.url_path(**(path_params or {}))
        bucket = self.limiter.key(context.region, context.seller, operation)
        deadline = self.clock() + self.retry.max_total
        attempt = 0
        token_retried = False
        while True:
            attempt += 1
            self.limiter.acquire(bucket, operation, self.max_wait, self.reserve_horizon)
            token = auth.token()
            response, failure, unsent = self._send(operation, context, url, token, query, body)
            if response is not None and failure is None:
                log.debug(
                    "%s for seller %s: HTTP %s (request id %s)",
                    operation.name,
                    context.seller,
                    response.status_code,
                    response.headers.get("x-amzn-RequestId"),
                )
                self._observe_rate(response, bucket, operation)
                return response
            assert failure is not None
            if response is not None and not token_retried and _token_expired(response, failure):
                log.info("%s for %s: access token expired, refreshing once", operation.name, context.seller)
                auth.invalidate(token)
                token_retried = True
                attempt -= 1
                continue
            if isinstance(failure, RateLimited):
                if own_throttle:
                    raise failure
                self.limiter.drain(bucket, operation)
            self._wait_or_raise(failure, operation, context, attempt, deadline, unsent=unsent)

    def _send(
        self,
        operation: Operation,
        context: CallContext,
        url: str,
        token: str,
        query: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> tuple[requests.Response | None, SpreportsError | None, bool]:
        """The response, the failure (None on 2xx) and whether the request surely never left us."""
        headers = {"x-amz-access-token": token, "User-Agent": USER_AGENT, "Accept": "application/json"}
        try:
            # Never follow a redirect: it would carry the access token to whatever host it names.
            response = self.session.request(
                operation.method,
                url,
                params=query,
                json=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            unsent = _never_sent(exc)
            # The exception text may hold the URL; ours holds no secret, but we say only what failed.
            message = f"{operation.name} for seller {context.seller}: no answer from SP-API ({type(exc).__name__})"
            if unsent or operation.idempotent:
                return None, ServiceUnavailable(message), unsent
            return None, OutcomeUnknown(f"{message}; it may have reached Amazon, so it was not retried"), unsent
        if 200 <= response.status_code < 300:
            return response, None, False
        return response, error_from_response(operation, context, response), False

    def _wait_or_raise(
        self,
        failure: SpreportsError,
        operation: Operation,
        context: CallContext,
        attempt: int,
        deadline: float,
        *,
        unsent: bool = False,
    ) -> None:
        if operation.idempotent:
            retryable = failure.status is None or failure.status in RETRY_STATUSES
        else:
            # A repeat after Amazon may have acted could create a duplicate (and burn createReport's quota).
            retryable = unsent or failure.status in UNPROCESSED_STATUSES
        # Only a retry is logged here: a failure that is raised is the caller's to tell, once, in its words
        # (its message already names the operation and the seller).
        if not retryable:
            raise failure
        delay = self.retry.delay(attempt, self.rand)
        if attempt >= self.retry.max_attempts or self.clock() + delay > deadline:
            if isinstance(failure, RateLimited):
                # Our bucket allowed the call but Amazon did not: come back when a token has surely refilled.
                failure.retry_after = max(1.0 / operation.rate, self.retry.max_delay)
            raise failure
        log.warning("%s; retrying in %.1f s (attempt %d of %d)", failure, delay, attempt, self.retry.max_attempts)
        self.sleep(delay)

    def _observe_rate(self, response: requests.Response, bucket: str, operation: Operation) -> None:
        self.limiter.observe_header(bucket, operation, response.headers.get("x-amzn-RateLimit-Limit"))


def error_from_response(operation: Operation, context: CallContext, response: requests.Response) -> SpreportsError:
    """The exception for a non-2xx SP-API answer, carrying status, request id and ``errors[]``."""
    status = response.status_code
    request_id = response.headers.get("x-amzn-RequestId")
    if 300 <= status < 400:
        redirect = UnexpectedResponse(
            f"{operation.name} for seller {context.seller}: SP-API answered HTTP {status}, a redirect; not followed, "
            "so that the access token never goes to another host"
        )
        redirect.status, redirect.request_id = status, request_id
        return redirect
    details = _error_details(response)
    summary = "; ".join(_describe(d) for d in details) or (response.reason or "no error body")
    message = f"{operation.name} for seller {context.seller} failed: HTTP {status} {summary}"
    if status in REFUSED_BODY_HINTS:
        message += f" - {REFUSED_BODY_HINTS[status]}"
    if request_id:
        message += f" (request id {request_id})"
    error: SpreportsError
    if status == 429:
        error = RateLimited(message, retry_after=1.0 / operation.rate)
    elif status >= 500 and not operation.idempotent and status not in UNPROCESSED_STATUSES:
        error = OutcomeUnknown(f"{message}; it may have been processed, so it was not retried")
    elif status >= 500:
        error = ServiceUnavailable(message)
    elif status == 404:
        error = NotFound(message)
    elif status == 409:
        error = Conflict(message)
    elif 400 <= status < 500:
        error = InvalidRequest(message)
    else:
        error = ServiceUnavailable(message)
    error.status = status
    error.request_id = request_id
    error.errors = details
    return error


def _error_details(response: requests.Response) -> tuple[ErrorDetail, ...]:
    try:
        body = response.json()
    except ValueError:
        return ()
    items = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(items, list):
        return ()
    found = []
    for item in items:
        if isinstance(item, dict):
            details = item.get("details")
            found.append(
                ErrorDetail(
                    code=str(item.get("code", "")),
                    message=str(item.get("message", "")),
                    details=str(details) if details else None,
                )
            )
    return tuple(found)


def _describe(detail: ErrorDetail) -> str:
    text = f"{detail.code}: {detail.message}"
    return f"{text} ({detail.details})" if detail.details else text


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never established, so Amazon cannot have seen the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError) or isinstance(exc, requests.ReadTimeout):
        return False
    # requests wraps urllib3's MaxRetryError; its reason says whether the connect itself failed (refused,
    # unresolvable, connect timeout) or the connection broke after the request went out.
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)


def _token_expired(response: requests.Response, failure: SpreportsError) -> bool:
    if response.status_code not in (401, 403):
        return False
    texts = [f"{d.message} {d.details or ''}" for d in failure.errors] or [response.text[:500]]
    return any("expired" in text.lower() for text in texts)
