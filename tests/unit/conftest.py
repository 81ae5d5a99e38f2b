"""The unit tier opens no socket and starts no process: an autouse guard fails any unit test that tries.

A test that needs a server, Redis, moto or a subprocess belongs in ``tests/integration``; a unit test fakes
the I/O at its seam instead (fakeredis, an injected ``write``, a fake session...). The shared fixtures
that bring servers (``redis_url``, ``aws_endpoint``, ``simulator``, a Celery worker...) fail here too: a
session fixture would start its server before any function-level guard could see it.

The guard covers the test's own thread and every thread started while it runs. Threads that were
already running when the test began (a session's moto server in the same xdist worker, say) and
finalizers (``__del__`` of an earlier test's garbage) are left alone: they are not the unit test's doing.
"""

from __future__ import annotations

import _posixsubprocess
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import pytest

# urllib3 probes for IPv6 support with a socket when it is first imported: an import, not a test's I/O.
# Imported here, before any guard, so no unit test fails or passes by which file ran first.
import urllib3  # noqa: F401


def _in_finalizer() -> bool:
    """Whether a ``__del__`` is running: an earlier test's garbage, collected now (a Celery result
    unsubscribing from Redis, say), is not the unit test's doing."""
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


class IsolationGuard:
    """Replaces the ways to open a socket or start a process with functions that refuse (and remember)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.before = set(threading.enumerate()) - {threading.main_thread()}
        #: Refusals in background threads (the test's own thread fails at once).
        self.refused: list[str] = []

    def forbid(self, owner: Any, name: str, what: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)

        def refuse(*args: Any, **kwargs: Any) -> Any:
            if threading.current_thread() in self.before or _in_finalizer():
                return original(*args, **kwargs)
            message = (
                f"a unit test may not {what} ({getattr(owner, '__name__', owner)}.{name}); "
                "fake the I/O at its seam, or move the test to tests/integration"
            )
            if threading.current_thread() is not threading.main_thread():
                self.refused.append(f"{message} [thread {threading.current_thread().name}]")
            # pytest.fail raises a BaseException: no `except Exception` or `except OSError` can swallow it.
            pytest.fail(message, pytrace=False)

        self.monkeypatch.setattr(owner, name, refuse)


@pytest.fixture(autouse=True)
def no_sockets_or_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[IsolationGuard]:
    """Fail the test if it (or a thread it started) opens a socket or starts a process."""
    guard = IsolationGuard(monkeypatch)
    guard.forbid(socket.socket, "__init__", "open a socket")
    guard.forbid(subprocess.Popen, "__init__", "start a process")
    guard.forbid(_posixsubprocess, "fork_exec", "start a process")  # multiprocessing's spawn and forkserver
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
        if hasattr(os, name):
            guard.forbid(os, name, "start a process")
    yield guard
    # A refusal inside a background thread only kills that thread: fail the test here instead.
    if guard.refused:
        pytest.fail("\n".join(guard.refused), pytrace=False)


def _servers_are_for_integration(request: pytest.FixtureRequest) -> NoReturn:
    pytest.fail(
        f"a unit test may not use the fixture {request.fixturename!r} (it brings a server): "
        "fake the I/O at its seam, or move the test to tests/integration",
        pytrace=False,
    )


# The root conftest's fixtures that start servers or reach them, refused in this tier.
redis_url = pytest.fixture(_servers_are_for_integration, name="redis_url")
redis_client = pytest.fixture(_servers_are_for_integration, name="redis_client")
aws_endpoint = pytest.fixture(_servers_are_for_integration, name="aws_endpoint")
sqs_queue_url = pytest.fixture(_servers_are_for_integration, name="sqs_queue_url")
settings = pytest.fixture(_servers_are_for_integration, name="settings")
celery_app = pytest.fixture(_servers_are_for_integration, name="celery_app")
celery_worker = pytest.fixture(_servers_are_for_integration, name="celery_worker")
simulator = pytest.fixture(_servers_are_for_integration, name="simulator")
