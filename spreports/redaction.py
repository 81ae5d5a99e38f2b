"""A last line of defence: scrub credentials and pre-signed URLs from every log record.

The code never logs them on purpose; this filter catches what a foreign library's message might
carry (e.g. a URL inside a requests or botocore exception).
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
# Token and secret shapes replaced whole.
_WHOLE = [
    # LWA access and refresh tokens, restricted data tokens (Atza|, Atzr|, Atz.sprdt|, ...).
    re.compile(r"Atz[a-z.]*\|[^\s'\",}]+"),
    # Bare LWA client secrets.
    re.compile(r"amzn1\.oa2-cs\.v1\.[^\s'\",&}]+"),
    # Any URL with a query string: pre-signed S3/CloudFront URLs carry their signature there.
    re.compile(r"https?://[^\s'\"?]+\?[^\s'\"]+"),
    # A signed query string without a scheme (requests: "Max retries exceeded with url: /k?X-Amz-Signature=").
    # It starts only where a word starts, so a long run without spaces is scanned once, not once per character.
    re.compile(r"(?<![^\s'\"])[^\s'\"?]*\?[^\s'\"]*X-Amz-(?:Signature|Credential|Security-Token)=[^\s'\"]*"),
]
# Secrets whose label stays: the first group is kept, the rest replaced.
_LABELLED = [
    # URL userinfo: scheme://user:password@host keeps scheme and user.
    re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://[^\s/:@'\"]*:)[^\s/'\"]*(?=@)"),
    # Secrets in key=value or "key": "value" form.
    re.compile(
        r"(?i)((?:client_secret|refresh_token|access_token|x-amz-access-token)[\"']?\s*[:=]\s*[\"']?)[^\s'\",&}]+"
    ),
]


def redact(text: str) -> str:
    """``text`` with tokens, secrets, URL passwords and signed URLs replaced by ``[redacted]``."""
    for pattern in _WHOLE:
        text = pattern.sub(REDACTED, text)
    for pattern in _LABELLED:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


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
