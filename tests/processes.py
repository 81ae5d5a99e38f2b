"""Run the product's own processes (``spreports ...``) as subprocesses in tests.

The starting, stopping and environment are the benchmarks' lab's (``benchmarks/lab.py``), their one home.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from benchmarks.lab import product_env as product_env
from benchmarks.lab import spreports, start_python
from benchmarks.lab import stop as stop
from benchmarks.lab import wait_for as lab_wait_for

T = TypeVar("T")


@contextmanager
def spreports_process(
    *args: str, env: Mapping[str, str], cwd: Path, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``spreports <args>`` running until the block ends (SIGTERM, then SIGKILL after 30 s)."""
    process = start_python(spreports(*args), product_env(env), cwd, log or cwd / f"{args[0]}.log")
    try:
        yield process
    finally:
        stop(process)


def wait_for(condition: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.1) -> T:
    """Poll ``condition`` until it returns something truthy; fail the test (AssertionError) after ``timeout`` s."""
    try:
        return lab_wait_for(condition, timeout, "condition", interval)
    except TimeoutError as exc:
        raise AssertionError(str(exc)) from None
