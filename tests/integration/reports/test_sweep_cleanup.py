"""The periodic sweep removes what writers killed mid-write left in the storage."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from spreports.reports.sweep import STALE_PARTS_FULL_SCAN_KEY
from spreports.settings import Settings
from spreports.storage import STALE_PART_SECONDS, DocumentKey, open_storage
from spreports.tasks.sweep import sweep_finished_reports


def test_the_sweep_removes_stale_leftovers_of_dead_writers(celery_app: Any, settings: Settings) -> None:
    storage = open_storage(settings)
    key = DocumentKey(
        seller_id="A1SELLER", report_document_id="DEAD", report_type="GET_X", day=datetime.now(UTC).date()
    )
    dead = storage.open_document(key, "txt")
    dead.write(b"half of it")  # its worker was killed: never committed nor aborted
    [part] = Path(settings.storage.url).rglob("*.part")
    old = time.time() - STALE_PART_SECONDS - 60
    os.utime(part, (old, old))
    assert sweep_finished_reports.apply().get() == {"stale-parts": 1}
    assert not part.exists()
    assert sweep_finished_reports.apply().get() == {}


def test_the_sweep_removes_stale_leftovers_in_day_folders_of_any_age_once_a_day(
    celery_app: Any, settings: Settings, redis_client: Any
) -> None:
    storage = open_storage(settings)
    today = datetime.now(UTC).date()
    old = time.time() - STALE_PART_SECONDS - 60

    def dead_part(document_id: str, days_ago: int) -> Path:
        key = DocumentKey(seller_id="A1SELLER", report_document_id=document_id, report_type="GET_X",
                          day=today - timedelta(days=days_ago))  # fmt: skip
        storage.open_document(key, "txt").write(b"half of it")  # its worker was killed mid-write
        [part] = Path(settings.storage.url).rglob(f".{document_id}.*.part")
        os.utime(part, (old, old))
        return part

    ten_days, a_year = dead_part("TEN-DAYS", 10), dead_part("A-YEAR", 365)
    assert sweep_finished_reports.apply().get() == {"stale-parts": 2}  # the day's first sweep: every folder
    assert not ten_days.exists() and not a_year.exists()
    later, recent = dead_part("LATER", 10), dead_part("RECENT", 1)
    assert sweep_finished_reports.apply().get() == {"stale-parts": 1}  # later sweeps: recent folders only
    assert later.exists() and not recent.exists()
    redis_client.delete(STALE_PARTS_FULL_SCAN_KEY)  # a day later
    assert sweep_finished_reports.apply().get() == {"stale-parts": 1}
    assert not later.exists()
