"""What a wait told by the fleet's token bucket may be, when the bucket runs on Redis's clock."""

from __future__ import annotations

import time


def waited(value: float, expected: float, since: float) -> bool:
    """``value`` is the wait ``expected`` at ``since`` (time.monotonic()), less the time gone by since then.

    The bucket runs on Redis's own clock: on a busy machine the calls of a test lie further apart, and each
    wait is shorter by as much. Never longer (2 ms spare for clock granularity)."""
    return expected - (time.monotonic() - since) - 0.002 <= value <= expected + 0.002
