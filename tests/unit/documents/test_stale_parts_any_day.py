"""Dead writers' leftovers are removed at any age past the bound, in a day folder of any age: a sweep
that did not run for days (the fleet was down) leaves none behind for good."""

from __future__ import annotations

import os
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from spreports.storage import STALE_PART_SECONDS, DocumentKey, LocalStorage
from spreports.storage.layout import index_parts
from spreports.storage.local import LocalWriter

TODAY = date(2026, 12, 7)

# (days before today of the folder, seconds since the part was last written, in _errors/, removed)
PARTS = [
    (0, STALE_PART_SECONDS + 60, False, True),
    (1, STALE_PART_SECONDS + 60, False, True),
    (2, STALE_PART_SECONDS + 60, False, True),  # older than yesterday: was never removed
    (30, 30 * 86400, False, True),
    (5 * 365, 5 * 365 * 86400, True, True),
    (2, STALE_PART_SECONDS + 60, True, True),
    (2, STALE_PART_SECONDS - 60, False, False),  # inside the bound: may be a live writer's
    (400, STALE_PART_SECONDS - 60, True, False),
]


@pytest.mark.parametrize(("age_days", "untouched", "errors", "removed"), PARTS)
def test_a_stale_part_goes_whatever_its_days_folder(
    tmp_path: Path, age_days: int, untouched: float, errors: bool, removed: bool
) -> None:
    storage = LocalStorage(tmp_path / "root")
    key = DocumentKey(seller_id="A1", report_document_id="DOC", report_type="GET_X",
                      day=TODAY - timedelta(days=age_days), errors=errors)  # fmt: skip
    writer = storage.open_document(key, "txt")
    writer.write(b"half of it")  # its worker was killed: never committed nor aborted
    [part] = (tmp_path / "root").rglob("*.part")
    then = time.time() - untouched
    os.utime(part, (then, then))
    assert storage.remove_stale_parts() == int(removed)
    assert part.exists() is not removed


def test_a_stale_part_of_the_manifest_index_goes_and_data_folders_are_left_alone(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    index = LocalWriter(storage.root.joinpath(*index_parts("A1", "DOC")), os.write)
    index.write(b"{")
    data = tmp_path / "root" / "_data" / "report_type=GET_X" / "seller_id=A1" / "date=2026-01-01" / ".x.part"
    data.parent.mkdir(parents=True)
    data.write_bytes(b"not ours")
    then = time.time() - STALE_PART_SECONDS - 60
    for part in (tmp_path / "root").rglob("*.part"):
        os.utime(part, (then, then))
    assert storage.remove_stale_parts() == 1
    assert [p.relative_to(tmp_path / "root").parts[0] for p in (tmp_path / "root").rglob("*.part")] == ["_data"]
    assert storage.remove_stale_parts([TODAY]) == 0  # the days asked for only
