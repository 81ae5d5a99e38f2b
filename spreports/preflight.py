"""Start-up checks: fail before serving, with one line that says what is wrong and where."""

from __future__ import annotations

from spreports.errors import SpreportsError, StorageError
from spreports.redis_server import broker_url, ping
from spreports.settings import Settings


class PreflightError(RuntimeError):
    """The process cannot work with these settings; the message is one line."""


def check_redis(settings: Settings) -> str:
    """Return the broker URL once Redis answers (starting the embedded one when none is configured)."""
    url = broker_url(settings)
    ping(url)
    return url


def check_storage(settings: Settings) -> None:
    """Prove the storage (a directory or an S3 bucket) accepts writes."""
    from spreports.storage import open_storage

    try:
        open_storage(settings).check_writable()
    except StorageError as exc:
        raise PreflightError(str(exc)) from None
    except SpreportsError as exc:
        # E.g. S3 unreachable (ServiceUnavailable) or refusing the probe: still one line, not a traceback.
        raise PreflightError(f"SPREPORTS_STORAGE__URL: {settings.storage.url} cannot be used: {exc}") from None
