"""The periodic sweep removes what writers killed mid-write left in the storage."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from spreports.settings import Settings
from spreports.storage import STALE_PART_SECONDS, DocumentKey, open_storage
from spreports.tasks.reports import sweep_finished_reports


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
