"""Helpers for tests of the embedded Redis as commands start (and stop) it."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spreports.workers.embedded_redis import EmbeddedRedis
from tests.processes import wait_for


@contextmanager
def short_directory() -> Iterator[Path]:
    """A directory with a short path (the embedded Redis's Unix socket path is limited to 107 bytes).

    Whatever embedded Redis is left in its ``.spreports`` is stopped at the end, so a failing test
    leaves no server behind either.
    """
    directory = Path(tempfile.mkdtemp(prefix="spr-", dir="/tmp"))
    try:
        yield directory
    finally:
        stop_embedded_redis(directory)
        shutil.rmtree(directory, ignore_errors=True)


def stop_embedded_redis(directory: Path) -> None:
    """Shut down the embedded Redis of ``directory`` (if it runs) and wait until its process is gone."""
    EmbeddedRedis(directory / ".spreports").stop()
    wait_for(lambda: redis_servers_in(directory) == [], timeout=30, interval=0.02)


def redis_servers_in(directory: Path) -> list[int]:
    """The pids of redis-server processes whose command line names ``directory`` (the embedded one's socket)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "redis-server" in command and str(directory) in command:
            pids.append(int(entry.name))
    return pids
