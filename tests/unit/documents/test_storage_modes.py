"""Stored files get the mode the process's umask gives new files, not mkstemp's 0600."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from spreports.storage import LocalStorage
from spreports.storage.local import file_mode
from tests.storage import key, manifest


@pytest.fixture
def umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_stored_files_honour_the_umask(umask: None, tmp_path: Path, mask: int, expected: int) -> None:
    os.umask(mask)
    assert file_mode() == expected
    storage = LocalStorage(tmp_path / "root")
    writer = storage.open_document(key("D1"), "txt")
    writer.write(b"data")
    location = Path(writer.commit())
    storage.write_manifest(key("D1"), manifest(str(location), "D1"))
    for path in (tmp_path / "root").rglob("*"):
        if path.is_file():
            assert stat.S_IMODE(path.stat().st_mode) == expected, path
