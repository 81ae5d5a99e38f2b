"""A last line of defence: scrub credentials and pre-signed URLs from every log record.

The code never logs them on purpose; this filter catches what a foreign library's message might
carry (e.g. a URL inside a requests or botocore exception).
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
_PATTERNS = [
    # LWA access and refresh tokens, restricted data tokens.
    re.compile(r"Atz[ar]\|[^\s'\",}]+"),
    # Any URL with a query string: pre-signed S3/CloudFront URLs carry their signature there.
    re.compile(r"https?://[^\s'\"?]+\?[^\s'\"]+"),
    # Secrets in key=value or "key": "value" form.
    re.compile(
        r"(?i)((?:client_secret|refresh_token|access_token|x-amz-access-token)[\"']?\s*[:=]\s*[\"']?)[^\s'\",&}]+"
    ),
]


def redact(text: str) -> str:
    """``text`` with tokens, secrets and signed URLs replaced by ``[redacted]``."""
    text = _PATTERNS[0].sub(REDACTED, text)
    text = _PATTERNS[1].sub(REDACTED, text)
    return _PATTERNS[2].sub(lambda m: m.group(1) + REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and exception text) through :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
