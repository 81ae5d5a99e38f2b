"""``spreports check`` warns when nothing re-drives lost work: beat's requeue task has not run lately."""

from __future__ import annotations

import fakeredis

from spreports.documents.inflight import InFlight
from spreports.workers.cli.checks import REQUEUE_STALE_SECONDS, recovery_warning

NOW = 2_000_000_000.0


def test_no_requeue_pass_ever_is_a_warning_naming_beat() -> None:
    warning = recovery_warning(fakeredis.FakeRedis(), now=NOW)
    assert warning is not None and "never run" in warning and "spreports beat" in warning


def test_a_fresh_pass_is_quiet_and_a_stale_one_warns() -> None:
    client = fakeredis.FakeRedis()
    InFlight(client, clock=lambda: NOW - 15).record_pass()
    assert recovery_warning(client, now=NOW) is None
    InFlight(client, clock=lambda: NOW - REQUEUE_STALE_SECONDS - 60).record_pass()
    warning = recovery_warning(client, now=NOW)
    assert warning is not None and "last ran 6 min ago" in warning and "spreports beat" in warning
