"""The embedded Redis: started once, shared by every process of the machine, stopped on demand."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from spreports.connection import connect
from spreports.workers.embedded_redis import EmbeddedRedis


def test_embedded_redis_is_shared_between_processes(tmp_path: Path) -> None:
    data_dir = Path(tempfile_short_dir())
    embedded = EmbeddedRedis(data_dir)
    try:
        url = embedded.ensure_running()
        connect(url).set("greeting", "from the parent")
        # A second process finds the running server instead of starting another one.
        code = (
            "from pathlib import Path; from spreports.connection import connect;"
            "from spreports.workers.embedded_redis import EmbeddedRedis;"
            f"url = EmbeddedRedis(Path({str(data_dir)!r})).ensure_running();"
            "print(connect(url).get('greeting').decode())"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30)
        assert out.stdout.strip() == "from the parent"
        assert embedded.ensure_running() == url
    finally:
        assert embedded.stop() is True
    assert embedded.is_running() is False
    try:
        # No retries: redis-py's default (ten, with backoff) only takes seconds to say the same.
        connect(embedded.url, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)).ping()
        raise AssertionError("server still answers after stop")
    except (redis.ConnectionError, FileNotFoundError):
        pass


def tempfile_short_dir() -> str:
    """A short directory path: Unix socket paths are limited to 107 bytes."""
    import tempfile

    return tempfile.mkdtemp(prefix="spr-", dir="/tmp")
