"""The simulator's clock: real time multiplied by a speed factor, plus jumps made by ``advance``."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """Simulated time. ``now()`` is a UTC datetime; ``seconds()`` a monotonic count of simulated seconds.

    One real second is ``speed`` simulated seconds; :meth:`advance` jumps ahead instantly.
    """

    def __init__(self, speed: float = 1.0, start: datetime | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = start or datetime.now(UTC)
        self._mono0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def seconds(self) -> float:
        """Simulated seconds since the clock started."""
        with self._lock:
            return (time.monotonic() - self._mono0) * self.speed + self._offset

    def now(self) -> datetime:
        """The simulated wall-clock time (UTC)."""
        return self.at(self.seconds())

    def at(self, seconds: float) -> datetime:
        """The wall-clock time of a simulated instant."""
        return self._start + timedelta(seconds=seconds)

    def seconds_of(self, moment: datetime) -> float:
        """The simulated instant of a wall-clock time."""
        return (moment - self._start).total_seconds()

    def advance(self, seconds: float) -> None:
        """Jump ``seconds`` of simulated time ahead."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds

    def real_seconds(self, simulated: float) -> float:
        """How long ``simulated`` seconds take in real time."""
        return simulated / self.speed


def iso(moment: datetime) -> str:
    """ISO 8601 in Amazon's style: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 date-time (``Z`` or an offset); a naive one is taken as UTC. Raises ValueError."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
