"""Start-up checks: fail before serving, with one line that says what is wrong and where."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from spreports.redis_server import broker_url, ping
from spreports.settings import Settings


class PreflightError(RuntimeError):
    """The process cannot work with these settings; the message is one line."""


def check_redis(settings: Settings) -> str:
    """Return the broker URL once Redis answers (starting the embedded one when none is configured)."""
    url = broker_url(settings)
    ping(url)
    return url


def local_storage_root(settings: Settings) -> Path | None:
    """The directory documents are stored under, or None for S3 storage."""
    parts = urlsplit(settings.storage.url)
    if parts.scheme == "s3":
        return None
    return Path(parts.path if parts.scheme == "file" else settings.storage.url)


def check_storage(settings: Settings) -> None:
    """Prove a local storage root can be created and written (S3 is checked on first upload)."""
    root = local_storage_root(settings)
    if root is None:
        return
    try:
        root.mkdir(parents=True, exist_ok=True)
        descriptor, probe = tempfile.mkstemp(dir=root, prefix=".spreports-probe-")
        os.close(descriptor)
        os.unlink(probe)
    except OSError as exc:
        raise PreflightError(f"SPREPORTS_STORAGE__URL: {root} is not a writable directory ({exc.strerror})") from None
