"""The download stage: check a pre-signed URL against the allowed hosts, GET it, read the raw body.

Pre-signed URLs are bearer credentials for five minutes. Nothing here puts one in a message: errors
name the host at most, foreign exceptions (whose text includes the URL) are translated and never
chained, and urllib3's debug log line (which prints the path and query) is redacted.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import math
import os
import re
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import requests
import urllib3.exceptions
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from spreports.errors import (
    DocumentRejected,
    DocumentUrlExpired,
    IncompleteDownload,
    RateLimited,
    ServiceUnavailable,
)

_QUERY = re.compile(r"\?\S*")
# A DNS label: 1 to 63 letters, digits, hyphens (none at either end) or underscores; a name of at most 253.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
MAX_HOST_NAME = 253
#: A throttled download comes back after the host's ``Retry-After``, within these bounds (a task's
#: countdown is capped at ten minutes anyway); a value that is not a number of seconds means this.
DEFAULT_RETRY_AFTER_SECONDS = 5.0
MAX_RETRY_AFTER_SECONDS = 600.0


class _RedactQueries(logging.Filter):
    """Drop query strings (the signature of a pre-signed URL) from urllib3's request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_QUERY.sub("?<redacted>", a) if isinstance(a, str) else a for a in record.args)
        return True


def install_log_filter() -> None:
    """Drop query strings from urllib3's request log lines in this process (idempotent)."""
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(f, _RedactQueries) for f in logger.filters):
        logger.addFilter(_RedactQueries())


def host_of(url: str) -> str:
    """The host of a URL, safe to log (no path, no query)."""
    try:
        return parse_url(url).host or "?"
    except LocationParseError:
        return "?"


def check_allowed(url: str, allowed_hosts: Sequence[str]) -> str:
    """Check a document URL against the allowed hosts; return the URL to connect to (the one checked).

    The URL is parsed once, by the parser the HTTP library connects with, so the host checked is the
    host reached. Refused: characters outside printable ASCII (a backslash, spaces, a fullwidth or
    other non-ASCII host), credentials in the URL, and any origin not allowed. Patterns are
    shell-style (``*.amazonaws.com``) and admit https on port 443 only; an entry with a scheme
    (``http://127.0.0.1:8123``) admits exactly that origin, which is how the local simulator's
    plain-http URLs are allowed.
    """
    if not url.isascii() or not url.isprintable() or any(c in url for c in " \\"):
        raise DocumentRejected("the document URL holds characters a URL may not (non-ASCII, space or backslash)")
    try:
        parsed = parse_url(url)
    except LocationParseError:
        raise DocumentRejected("the document URL is malformed") from None
    host = (parsed.host or "").lower()
    _check_labels(host)
    if parsed.auth:
        raise DocumentRejected(f"the document URL on host {host!r} carries credentials; refused")
    scheme = (parsed.scheme or "").lower()
    port = parsed.port or _default_port(scheme)
    for entry in allowed_hosts:
        entry = entry.strip().lower()
        if "://" in entry:
            allowed = parse_url(entry)
            if (scheme, host, port) == (
                allowed.scheme,
                allowed.host,
                allowed.port or _default_port(allowed.scheme or ""),
            ):
                return str(parsed.url)
        elif scheme == "https" and port == 443 and host and fnmatch.fnmatchcase(host, entry):
            return str(parsed.url)
    raise DocumentRejected(
        f"the document URL ({scheme} on host {host!r}, port {port}) is not on SPREPORTS_DOCUMENTS__ALLOWED_HOSTS; refused"
    )


def _check_labels(host: str) -> None:
    """Refuse a host name DNS cannot carry: urllib3 refuses it only when it connects, with an exception
    outside requests' own (a permanent fault that would otherwise be reported as a bug)."""
    if not host or host.startswith("["):  # no host (refused as not allowed), or an IPv6 literal
        return
    name = host.removesuffix(".")  # the root's empty label, as in "s3.amazonaws.com."
    if len(name) > MAX_HOST_NAME or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        shown = host if len(host) <= 80 else f"{host[:80]}..."
        raise DocumentRejected(
            f"the document URL's host {shown!r} is not a DNS name (an empty label, a label over 63 characters, "
            f"a name over {MAX_HOST_NAME}, or a character or hyphen a label may not have); refused"
        )


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@contextmanager
def open_download(
    session: requests.Session, url: str, *, connect_timeout: float, read_timeout: float
) -> Iterator[requests.Response]:
    """GET the URL with ``stream=True`` and yield the response once its status is a success.

    The caller reads ``response.raw`` itself with ``decode_content=False``, so a ``Content-Encoding:
    gzip`` body arrives as gzip bytes and is inflated exactly once (by content, downstream).
    """
    host = host_of(url)
    try:
        response = session.get(
            url,
            stream=True,
            timeout=(connect_timeout, read_timeout),
            allow_redirects=False,
            headers={"Accept-Encoding": "gzip, identity"},
        )
    except requests.Timeout:
        raise ServiceUnavailable(f"timed out connecting to the document host {host!r}") from None
    except (
        requests.exceptions.InvalidURL,
        requests.exceptions.InvalidSchema,
        requests.exceptions.MissingSchema,
        urllib3.exceptions.LocationValueError,  # raised by urllib3 as it connects, not wrapped by requests
    ):
        # No retry can mend the URL itself.
        raise DocumentRejected(f"the document URL on host {host!r} cannot be fetched") from None
    except requests.RequestException as exc:
        raise ServiceUnavailable(f"cannot reach the document host {host!r} ({type(exc).__name__})") from None
    try:
        _check_status(response, host)
        yield response
    finally:
        response.close()


def _check_status(response: requests.Response, host: str) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    if status in (400, 403):
        # S3 and CloudFront answer 403 (sometimes 400) for an expired or otherwise refused signature:
        # the cure is a fresh URL from getReportDocument, which the next attempt fetches.
        raise DocumentUrlExpired(f"the document host {host!r} refused the pre-signed URL (HTTP {status})")
    if status == 429:
        raise RateLimited(
            f"the document host {host!r} throttled the download (HTTP 429)",
            retry_after=_retry_after(response),
        )
    if status >= 500:
        raise ServiceUnavailable(f"the document host {host!r} failed (HTTP {status})")
    raise DocumentRejected(f"the document host {host!r} answered HTTP {status}")


def _retry_after(response: requests.Response) -> float:
    """The host's ``Retry-After`` in seconds, bounded: anything not a finite number of seconds is 5 s."""
    try:
        seconds = float(response.headers.get("Retry-After", "5")[:32])
    except ValueError:
        return DEFAULT_RETRY_AFTER_SECONDS
    if not math.isfinite(seconds):
        return DEFAULT_RETRY_AFTER_SECONDS
    return min(max(1.0, seconds), MAX_RETRY_AFTER_SECONDS)


def read_raw(response: requests.Response, chunk_size: int) -> Iterator[bytes]:
    """The body exactly as sent (no content decoding), in chunks of up to ``chunk_size`` bytes.

    A body cut short (fewer bytes than Content-Length, a broken chunked encoding, a reset or a read
    timeout) raises :class:`IncompleteDownload`.
    """
    raw = response.raw
    host = host_of(response.url or "")
    while True:
        try:
            chunk = raw.read(chunk_size, decode_content=False)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise IncompleteDownload(f"the download from {host!r} was cut off ({_describe(exc)})") from None
        if not chunk:
            return
        yield chunk


def cut_off(response: requests.Response) -> None:
    """Shut the response's connection down, so that a thread blocked reading it returns at once.

    A download abandoned mid-body (the worker is stopping, another stage failed) would otherwise keep
    its reader blocked until the read timeout, and closing the response waits for that reader.
    """
    try:
        descriptor = os.dup(response.raw.fileno())
    except (OSError, ValueError, AttributeError):
        return  # released or closed already: nothing blocks on it
    # A shutdown acts on the connection, not on the descriptor: through a duplicate, it wakes the reader
    # without touching the objects (TLS included) that thread is using.
    with socket.socket(fileno=descriptor) as duplicate, contextlib.suppress(OSError):
        duplicate.shutdown(socket.SHUT_RDWR)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return "read timed out"
    if isinstance(exc, urllib3.exceptions.ProtocolError) and exc.args and isinstance(exc.args[-1], BaseException):
        return type(exc.args[-1]).__name__
    return type(exc).__name__
