"""Local storage: layout, escaping, atomic writes, a full disk, manifests; choosing the backend.

S3 (multipart uploads through moto's server): tests/integration/documents/test_storage_s3.py.
"""

from __future__ import annotations

import errno
import hashlib
import os
import time
from datetime import date
from pathlib import Path

import pytest

from spreports.errors import StorageError, StorageUnavailable
from spreports.settings import Settings
from spreports.storage import (
    STALE_PART_SECONDS,
    LocalStorage,
    S3Storage,
    open_storage,
    safe_part,
)
from tests.storage import DAY, key, manifest


@pytest.mark.parametrize(
    "document_id",
    ["../../etc/passwd", "..", ".", "/abs/path", "a/../../b", "_index", "x\\..\\y", "é/ü", "sp ace;rm -rf", "%2e%2e"],
)
def test_hostile_ids_stay_inside_the_root_and_round_trip(tmp_path: Path, document_id: str) -> None:
    storage = LocalStorage(tmp_path / "root")
    writer = storage.open_document(key(document_id, seller_id="../S"), "txt")
    writer.write(b"data")
    location = Path(writer.commit())
    storage.write_manifest(key(document_id, seller_id="../S"), manifest(str(location), document_id, "../S"))
    for path in (tmp_path / "root").rglob("*"):
        assert path.resolve().is_relative_to((tmp_path / "root").resolve())
    assert location.parent.parent.parent.parent == storage.root
    assert location.read_bytes() == b"data"
    found = storage.find("../S", document_id)
    assert found is not None and found.report_document_id == document_id
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]


@pytest.mark.parametrize("bad", ["", "a\x00b", "x" * 300])
def test_empty_nul_or_overlong_parts_are_refused(bad: str) -> None:
    with pytest.raises(StorageError, match="refusing"):
        safe_part(bad, what="report document id")


def test_escaping_keeps_ordinary_ids_readable_and_distinct() -> None:
    assert safe_part("amzn1.tortuga.3.edbcd0d8-3434.REP45", what="id") == "amzn1.tortuga.3.edbcd0d8-3434.REP45"
    assert safe_part("a/b", what="id") != safe_part("a%2Fb", what="id")
    assert safe_part("..", what="id") == "%2E."


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EDQUOT, "disk quota exceeded"),
        (errno.EROFS, "the file system is read-only"),
        (errno.EIO, "an I/O error"),
    ],
)
def test_a_full_or_read_only_disk_is_tried_again_later_and_leaves_no_file(
    tmp_path: Path, code: int, reason: str
) -> None:
    written: list[int] = []

    def write(fd: int, data: bytes) -> int:
        if sum(written) > 3 * 2**20:
            raise OSError(code, "refused")
        written.append(len(data))
        return len(data)  # pretend; the seam is what a full disk looks like to us

    storage = LocalStorage(tmp_path / "root", write=write)
    writer = storage.open_document(key(), "txt")
    with pytest.raises(
        StorageUnavailable, match=rf"{reason} while writing DOC-1\.txt; nothing was stored, trying later"
    ):
        for _ in range(10):
            writer.write(b"x" * 2**20)
    writer.abort()
    assert [p for p in (tmp_path / "root").rglob("*") if p.is_file()] == []


def test_partial_writes_are_continued(tmp_path: Path) -> None:
    import os

    storage = LocalStorage(tmp_path / "root", write=lambda fd, data: os.write(fd, bytes(data[:1000])))
    writer = storage.open_document(key(), "bin")
    writer.write(bytes(range(256)) * 100)
    assert Path(writer.commit()).read_bytes() == bytes(range(256)) * 100


def test_nothing_is_visible_before_commit_and_abort_removes_the_temp_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    writer = storage.open_document(key(), "txt")
    writer.write(b"half")
    directory = tmp_path / "root" / "A1SELLER" / "GET_X" / "2026-11-28"
    assert [p.name for p in directory.iterdir() if not p.name.endswith(".part")] == []
    writer.abort()
    assert list(directory.iterdir()) == []
    assert storage.find("A1SELLER", "DOC-1") is None


def test_check_writable(tmp_path: Path) -> None:
    LocalStorage(tmp_path / "new" / "root").check_writable()
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o500)
    try:
        import os

        if os.geteuid() != 0:  # root writes anyway
            with pytest.raises(StorageError, match="not writable"):
                LocalStorage(tmp_path / "ro").check_writable()
    finally:
        (tmp_path / "ro").chmod(0o700)
    with pytest.raises(StorageError):
        LocalStorage(Path("/dev/null/x")).check_writable()


def test_open_storage_picks_the_backend(tmp_path: Path) -> None:
    # Choosing the backend builds a boto3 client and nothing more: no request, so no S3 is needed.
    assert isinstance(open_storage(Settings(storage={"url": str(tmp_path)})), LocalStorage)
    assert isinstance(open_storage(Settings(storage={"url": f"file://{tmp_path}"})), LocalStorage)
    s3 = open_storage(Settings(storage={"url": "s3://bucket/some/prefix"}))
    assert isinstance(s3, S3Storage) and (s3.bucket, s3.prefix) == ("bucket", "some/prefix")


def test_a_new_write_removes_only_stale_leftovers_of_a_killed_one(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    killed = storage.open_document(key(), "txt")
    killed.write(b"half of it")  # never committed nor aborted: its process died long ago
    old = time.time() - STALE_PART_SECONDS - 60
    os.utime(killed._temp, (old, old))  # type: ignore[arg-type]
    other = storage.open_document(key("DOC-2"), "txt")
    other.write(b"someone else's")
    writer = storage.open_document(key(), "txt")
    writer.write(b"whole")
    writer.commit()
    directory = tmp_path / "root" / "A1SELLER" / "GET_X" / "2026-11-28"
    names = sorted(p.name for p in directory.iterdir())
    assert "DOC-1.txt" in names and len([n for n in names if n.startswith(".DOC-1.txt.")]) == 0
    assert len([n for n in names if n.startswith(".DOC-2.txt.")]) == 1


def test_concurrent_writers_of_one_document_never_delete_each_others_temp_files(tmp_path: Path) -> None:
    # A duplicate task whose claim lapsed may write the same document at once: each keeps its own file.
    storage = LocalStorage(tmp_path / "root")
    first = storage.open_document(key(), "txt")
    first.write(b"first ")
    second = storage.open_document(key(), "txt")
    second.write(b"second ")
    assert first._temp is not None and second._temp is not None and first._temp != second._temp
    assert first._temp.exists() and second._temp.exists()  # opening the second left the first alone
    first.write(b"writer")
    assert Path(first.commit()).read_bytes() == b"first writer"
    second.write(b"writer")
    assert Path(second.commit()).read_bytes() == b"second writer"
    directory = tmp_path / "root" / "A1SELLER" / "GET_X" / "2026-11-28"
    assert not list(directory.glob("*.part"))


def test_a_copy_with_the_same_bytes_committed_first_is_kept_not_rewritten(tmp_path: Path) -> None:
    # A run stopped between its commit and its manifest; the next run's identical copy leaves the file alone.
    storage = LocalStorage(tmp_path / "root")
    first = storage.open_document(key(), "txt")
    first.write(b"the document")
    location = Path(first.commit(hashlib.sha256(b"the document").hexdigest()))
    assert not first.kept_existing
    inode = location.stat().st_ino
    second = storage.open_document(key(), "txt")
    second.write(b"the document")
    assert Path(second.commit(hashlib.sha256(b"the document").hexdigest())) == location
    assert second.kept_existing
    assert location.stat().st_ino == inode and location.read_bytes() == b"the document"
    assert not list(location.parent.glob(".*.part"))


def test_a_different_copy_under_the_final_name_is_replaced_whole(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    old = storage.open_document(key(), "txt")
    old.write(b"stored with other settings")
    location = Path(old.commit(hashlib.sha256(b"stored with other settings").hexdigest()))
    new = storage.open_document(key(), "txt")
    new.write(b"this run's bytes")
    assert Path(new.commit(hashlib.sha256(b"this run's bytes").hexdigest())) == location
    assert not new.kept_existing and location.read_bytes() == b"this run's bytes"
    assert not list(location.parent.glob(".*.part"))


def test_a_file_system_without_hard_links_gets_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: object, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    storage = LocalStorage(tmp_path / "root")
    for body in (b"first", b"second"):
        writer = storage.open_document(key(), "txt")
        writer.write(body)
        location = Path(writer.commit(hashlib.sha256(body).hexdigest()))
        assert location.read_bytes() == body and not writer.kept_existing
    assert not list(location.parent.glob(".*.part"))


def test_a_stale_part_is_older_than_any_live_task() -> None:
    from spreports.tasks.retrying import HARD_TIME_LIMIT

    assert STALE_PART_SECONDS > HARD_TIME_LIMIT


def test_a_large_write_starts_writeback_early_and_stays_whole(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    writer = storage.open_document(key(), "bin")
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(40):  # past the 32 MiB writeback step
        writer.write(block)
    assert writer._flushed >= 32 * 2**20
    data = Path(writer.commit()).read_bytes()
    assert len(data) == 40 * 2**20 and data[: 2**20] == block and data[-(2**20) :] == block


def test_the_periodic_clean_up_removes_only_stale_leftovers_of_the_given_days(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    old = time.time() - STALE_PART_SECONDS - 60
    dead = [storage.open_document(key(f"DEAD-{n}", **extra), "txt") for n, extra in enumerate([{}, {"errors": True}])]
    alive = storage.open_document(key("ALIVE"), "txt")
    elsewhere = storage.open_document(key("OTHER-DAY", day=date(2026, 11, 1)), "txt")
    for writer in (*dead, alive, elsewhere):
        writer.write(b"half of it")
    for writer in (*dead, elsewhere):
        os.utime(writer._temp, (old, old))  # type: ignore[arg-type]
    assert storage.remove_stale_parts([DAY]) == 2
    left = sorted(p.name.split(".txt.")[0] for p in (tmp_path / "root").rglob("*.part"))
    assert left == [".ALIVE", ".OTHER-DAY"]  # a live writer's, and another day's (not asked for)
    alive.write(b" and the rest")
    assert alive.commit().endswith("ALIVE.txt")
