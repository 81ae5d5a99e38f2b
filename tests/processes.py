"""Run the product's own processes (``spreports ...``) as subprocesses in tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def product_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The test process's environment without SPREPORTS_* leftovers, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPREPORTS_")}
    # A stopped worker's soft shutdown sleeps its whole length whenever a task is still listed as running,
    # even one that has just ended; tests stop workers often. The tests of stopping itself set it.
    env["SPREPORTS_WORKER_SOFT_SHUTDOWN_SECONDS"] = "1"
    env.update(extra)
    return env


@contextmanager
def spreports_process(
    *args: str, env: Mapping[str, str], cwd: Path, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``spreports <args>`` running until the block ends (SIGTERM, then SIGKILL after 30 s)."""
    with open(log or cwd / f"{args[0]}.log", "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "spreports.workers.cli", *args],
            env=product_env(env), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            yield process
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
    """Send ``sig`` to the process group, wait, SIGKILL after ``timeout``; return the exit code."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def wait_for(condition: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.1) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
