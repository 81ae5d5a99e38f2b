"""``spreports check`` against a real Redis: it warns while beat's requeue task has left no fresh heartbeat,
and is quiet once it has (the requeue task itself records it, as beat's 15-second entry runs it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from spreports.tasks.documents import requeue_orphaned_documents
from tests.integration.test_check import check, deployment

__all__ = ["deployment"]  # the fixture, shared with test_check.py

WARNING = "the requeue task has never run"


def test_check_warns_without_beat_and_is_quiet_with_its_fresh_heartbeat(
    deployment: dict[str, str], redis_client: redis.Redis, celery_app: Any, tmp_path: Path
) -> None:
    without = check(deployment, tmp_path / "cwd")
    assert without.returncode == 0, without.stdout + without.stderr
    assert WARNING in without.stderr and "spreports beat" in without.stderr

    assert requeue_orphaned_documents.apply().get() == 0  # one pass, as beat runs it
    fresh = check(deployment, tmp_path / "cwd")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "requeue task" not in fresh.stderr, fresh.stderr
