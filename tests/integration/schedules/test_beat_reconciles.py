"""Beat reconciles at once: a real beat and worker against the simulator; the sync's lock; request entries.

The simulator's request log is the witness: which SP-API calls were made, and how many.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.signals import task_postrun

from spreports import names
from spreports.schedules.runs import SyncState
from spreports.settings import Settings
from spreports.simulator import Simulator
from tests.processes import spreports_process, wait_for
from tests.sim import simulator_settings

LISTINGS = '[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
BROWSE = '[[schedules]]\nreport_type = "GET_XML_BROWSE_TREE_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
WRITES = ("createReportSchedule", "cancelReportSchedule")


@pytest.fixture
def settings(sim: Simulator, redis_url: str, redis_client: redis.Redis, tmp_path: Path) -> Settings:
    schedules = tmp_path / "schedules.toml"
    schedules.write_text(LISTINGS + 'period = "P1D"\n' + BROWSE + 'period = "PT12H"\n')
    return simulator_settings(sim, redis_url, tmp_path, schedules_file=schedules)  # type: ignore[no-any-return]


@pytest.fixture
def finished() -> Iterator[list[tuple[str, dict[str, Any], Any]]]:
    """(task name, kwargs, result) of every task the in-process worker finished, in order."""
    seen: list[tuple[str, dict[str, Any], Any]] = []

    def record(task: Any = None, kwargs: Any = None, retval: Any = None, **_: Any) -> None:
        seen.append((task.name, dict(kwargs or {}), retval))

    task_postrun.connect(record, weak=False)
    yield seen
    task_postrun.disconnect(record)


def _schedules(sim: Simulator) -> dict[str, str]:
    with sim.world.lock:
        return {s.report_type: s.period for s in sim.world.schedules.values()}


def _writes(sim: Simulator) -> int:
    return sum(len(sim.requests(operation)) for operation in WRITES)


def test_beat_creates_schedules_within_seconds_and_a_second_beat_adds_no_call(  # type: ignore[no-untyped-def]
    celery_worker, settings: Settings, sim: Simulator, tmp_path: Path, finished
) -> None:
    env = {**sim.env(), "SPREPORTS_BROKER_URL": str(settings.broker_url),
           "SPREPORTS_SCHEDULES_FILE": str(settings.schedules_file)}  # fmt: skip
    with spreports_process("beat", "-s", str(tmp_path / "beat-1"), env=env, cwd=tmp_path, log=tmp_path / "beat-1.log"):
        wait_for(lambda: len(_schedules(sim)) == 2, timeout=60)  # a hang guard: what follows says "at once"
        assert _schedules(sim) == {"GET_MERCHANT_LISTINGS_ALL_DATA": "P1D", "GET_XML_BROWSE_TREE_DATA": "PT12H"}
        [sync] = wait_for(lambda: [k for name, k, _ in finished if name == names.SYNC_REPORT_SCHEDULES], timeout=30)
        # At once: beat's start-up check (its first) found them missing and sent the sync, not a later periodic
        # check; what the clock says is not asked, a busy machine takes long to start beat.
        checks = [(k, r) for n, k, r in finished if n == names.CHECK_REPORT_SCHEDULES]
        assert checks[0][0].get("beat_start") and "sync" in checks[0][1], checks
        assert sync.get("beat_start"), sync
        reads, writes = len(sim.requests("getReportSchedules")), _writes(sim)
        assert (reads, writes) == (1, 2)
        # A second beat started by mistake: its start-up check finds the schedules just applied.
        with spreports_process("beat", "-s", str(tmp_path / "beat-2"), env=env, cwd=tmp_path,
                               log=tmp_path / "beat-2.log"):  # fmt: skip
            starts = wait_for(
                lambda: (
                    len([k for n, k, _ in finished if n == names.CHECK_REPORT_SCHEDULES and k.get("beat_start")]) >= 2
                ),
                timeout=30,
            )
            assert starts
        second_start = [r for n, k, r in finished if n == names.CHECK_REPORT_SCHEDULES and k.get("beat_start")][1]
        assert "sync" not in second_start
    assert (len(sim.requests("getReportSchedules")), _writes(sim)) == (reads, writes)


def test_an_edited_file_is_applied_at_the_next_check_and_a_second_sync_writes_nothing(  # type: ignore[no-untyped-def]
    celery_app, celery_worker, settings: Settings, sim: Simulator
) -> None:
    check = celery_app.send_task(names.CHECK_REPORT_SCHEDULES).get(timeout=30)
    assert check == {"sync": "never ran"}
    wait_for(lambda: len(_schedules(sim)) == 2, timeout=30)
    wait_for(lambda: SyncState(celery_app.backend.client).applied(), timeout=30)
    assert celery_app.send_task(names.CHECK_REPORT_SCHEDULES).get(timeout=30) == {}  # nothing due: no SP-API call
    assert len(sim.requests("getReportSchedules")) == 1
    assert settings.schedules_file is not None
    settings.schedules_file.write_text(LISTINGS + 'period = "P2D"\n' + BROWSE + 'period = "PT12H"\n')
    assert celery_app.send_task(names.CHECK_REPORT_SCHEDULES).get(timeout=30) == {"sync": "file changed"}
    wait_for(lambda: _schedules(sim)["GET_MERCHANT_LISTINGS_ALL_DATA"] == "P2D", timeout=30)
    writes = wait_for(lambda: _writes(sim) == 3 and _writes(sim), timeout=30)
    # Asked outright (as `spreports schedules sync` or a person's send_task does): reads, and no write call.
    result = celery_app.send_task(names.SYNC_REPORT_SCHEDULES).get(timeout=30)
    assert result == {sim.seller_id: {"created": 0, "kept": 2}}
    assert _writes(sim) == writes


def test_a_sync_never_runs_beside_another(
    celery_app, celery_worker, settings: Settings, sim: Simulator, redis_client
) -> None:  # type: ignore[no-untyped-def]
    state = SyncState(redis_client)
    with state.lock(__import__("datetime").timedelta(minutes=1)) as held:
        assert held is not None
        result = celery_app.send_task(names.SYNC_REPORT_SCHEDULES).get(timeout=30)
        assert result == {"skipped": "another schedule sync is running"}
    assert sim.requests("getReportSchedules") == []
    # Released in finally: the next sync runs.
    assert celery_app.send_task(names.SYNC_REPORT_SCHEDULES).get(timeout=30)[sim.seller_id] == {"created": 2, "kept": 0}
    assert redis_client.get(state.lock_key) is None
