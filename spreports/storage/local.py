"""Documents in a local directory tree: temporary file, fsync, atomic rename."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from spreports.errors import StorageError, StorageUnavailable
from spreports.storage.base import ManifestWriting
from spreports.storage.layout import ERRORS_DIR, INDEX_DIR, DocumentKey, Manifest, index_parts

WRITEBACK_STEP = 32 * 2**20
# A temporary file untouched for this long belongs to a dead writer: it was created after its task
# started, and no task lives past the hard time limit (45 min, spreports.tasks.retrying). Younger ones may be a
# live writer's (a duplicate task's, whose claim lapsed), so they are left alone.
STALE_PART_SECONDS = 3600
# Any day folder (YYYY-MM-DD), as a glob: not the data folders beside them.
_ANY_DAY = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"


# Conditions an operator (or time) mends: a write refused for one of these is tried again later.
_PASSING = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EIO: "an I/O error",
    errno.ESTALE: "a stale network file handle",
}


def _storage_error(exc: OSError, what: str) -> StorageError | StorageUnavailable:
    if exc.errno in _PASSING:
        return StorageUnavailable(f"{_PASSING[exc.errno]} while writing {what}; nothing was stored, trying later")
    reason = exc.strerror or type(exc).__name__
    return StorageError(f"cannot write {what}: {reason}; nothing was stored")


class LocalStorage(ManifestWriting):
    """Documents in a local directory tree; ``write`` is the I/O seam (tests inject failures there)."""

    def __init__(
        self,
        root: Path,
        *,
        write: Callable[[int, bytes], int] = os.write,
        stale_after: float = STALE_PART_SECONDS,
    ) -> None:
        self.root = root.absolute()
        self._write = write
        self.stale_after = stale_after

    def remove_stale_parts(self, days: Sequence[date] | None = None) -> int:
        """Delete the temporary files of writers killed mid-write in the day folders of ``days``, or (None)
        in every folder writers write to, whatever its day (and the manifest index's).

        Only files untouched for ``stale_after``: a younger one may be a live writer's.
        """
        cutoff = time.time() - self.stale_after
        names = [day.isoformat() for day in days] if days is not None else [_ANY_DAY]
        patterns = [
            pattern for name in names for pattern in (f"*/*/{name}/.*.part", f"{ERRORS_DIR}/*/*/{name}/.*.part")
        ]
        if days is None:
            patterns.append(f"{INDEX_DIR}/*/.*.part")
        removed = 0
        for pattern in patterns:
            for stale in self.root.glob(pattern):
                with contextlib.suppress(FileNotFoundError):
                    if stale.stat().st_mtime < cutoff:
                        stale.unlink()
                        removed += 1
        return removed

    def location(self, parts: list[str]) -> str:
        """The absolute path of a relative path under the root."""
        return str(self._path(parts))

    def _path(self, parts: list[str]) -> Path:
        path = self.root.joinpath(*parts)
        # Escaping makes this impossible; the check stays as a second line of defence.
        if os.path.commonpath([self.root, os.path.normpath(path)]) != str(self.root):
            raise StorageError("refusing a path outside the storage root")
        return path

    def open_document(self, key: DocumentKey, suffix: str) -> LocalWriter:
        """A temporary file in the target directory, renamed into place on commit."""
        return LocalWriter(self._path([*key.directory(), key.name(suffix)]), self._write, stale_after=self.stale_after)

    def find(self, seller_id: str, report_document_id: str) -> Manifest | None:
        """Read the index copy of the manifest, if the document was stored."""
        try:
            data = self._path(index_parts(seller_id, report_document_id)).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the manifest index: {exc.strerror}") from None
        return Manifest.model_validate_json(data)

    def write_small(self, parts: list[str], body: bytes, *, content_type: str) -> None:
        """One small file, written atomically like a document (``content_type`` is for S3)."""
        writer = LocalWriter(self._path(parts), self._write, stale_after=self.stale_after)
        try:
            writer.write(body)
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def check_writable(self) -> None:
        """Create the root if needed and write, fsync and remove a probe file."""
        # A probe name of its own: several workers may start at once.
        probe = self.root / f".spreports-probe-{uuid.uuid4().hex}"
        writer = None
        try:
            writer = LocalWriter(probe, self._write)
            writer.write(b"probe")
            writer.commit()
            os.unlink(probe)
        except StorageError:
            if writer is not None:
                writer.abort()
            raise StorageError(f"SPREPORTS_STORAGE__URL: {self.root} is not a writable directory") from None
        except OSError as exc:
            raise StorageError(f"SPREPORTS_STORAGE__URL: {self.root} is not writable ({exc.strerror})") from None


class LocalWriter:
    """One document being written: temporary file, fsync, atomic rename, directory fsync."""

    def __init__(
        self, path: Path, write: Callable[[int, bytes], int], *, stale_after: float = STALE_PART_SECONDS
    ) -> None:
        self.path = path
        self._write = write
        self._display = path.name
        prefix = f".{path.name[:60]}.{hashlib.sha256(path.name.encode()).hexdigest()[:8]}."
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _remove_stale(path.parent, prefix, stale_after)
            # Unique per writer (a random part of its own, created O_EXCL): two writers of one document
            # (a duplicate whose claim lapsed) never share or delete each other's temporary file.
            self._fd, temp = tempfile.mkstemp(
                dir=path.parent, prefix=f"{prefix}{uuid.uuid4().hex[:12]}.", suffix=".part"
            )
        except OSError as exc:
            raise _storage_error(exc, self._display) from None
        self._temp: Path | None = Path(temp)
        self._written = 0
        self._flushed = 0
        self.kept_existing = False

    def write(self, data: bytes) -> None:
        """Append all of ``data`` (os.write on large buffers; partial writes are continued)."""
        view = memoryview(data)
        try:
            while view:
                written = self._write(self._fd, view)  # type: ignore[arg-type]
                view = view[written:]
                self._written += written
            if self._written - self._flushed >= WRITEBACK_STEP:
                self._start_writeback()
        except OSError as exc:
            self.abort()
            raise _storage_error(exc, self._display) from None

    def _start_writeback(self) -> None:
        # Start writing the pages out now (FADV_DONTNEED starts writeback without waiting, and drops
        # pages already clean), so the fsync at the end waits for the last step only, not the whole
        # document, and a big download does not flood the page cache. Advisory: errors are ignored.
        if hasattr(os, "posix_fadvise"):
            with contextlib.suppress(OSError):
                os.posix_fadvise(self._fd, 0, self._written, os.POSIX_FADV_DONTNEED)
        self._flushed = self._written

    def commit(self, sha256: str | None = None) -> str:
        """fsync, give the file its final name, fsync the directory; return the path.

        With ``sha256`` (the written bytes' digest), a file already under the final name with that
        digest is kept and this copy dropped (``kept_existing``): another run of the same document
        committed first, and a reader never sees the file change under it. Otherwise the final name is
        replaced atomically.
        """
        if self._temp is None:
            raise StorageError(f"{self._display} was aborted; nothing to commit")
        try:
            # The temporary file is created 0600 (mkstemp); the stored one gets the mode any new file
            # of this process gets (0666 less the umask), so readers of the reports can open it.
            os.fchmod(self._fd, file_mode())
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
            if sha256 is None:
                os.replace(self._temp, self.path)
            else:
                self.kept_existing = not _publish(self._temp, self.path, sha256)
            self._temp = None
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            self.abort()
            raise _storage_error(exc, self._display) from None
        return str(self.path)

    def abort(self) -> None:
        """Close and delete the temporary file."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        if self._temp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._temp)
            self._temp = None


def _publish(temp: Path, path: Path, sha256: str) -> bool:
    """Give ``temp`` the name ``path`` unless a file with the digest ``sha256`` is there; whether it did.

    A hard link creates the name only if it is free (rename would replace it silently); ``temp`` is
    removed either way. File systems without hard links get the rename.
    """
    try:
        os.link(temp, path)
    except FileExistsError:
        if _same_digest(path, sha256):
            os.unlink(temp)
            return False
        os.replace(temp, path)  # a different copy (other settings, say), or unreadable: this run's stands
        return True
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        os.replace(temp, path)
        return True
    # Stored: a temporary name left behind (unlink failing) is removed by the stale-part clean-up.
    with contextlib.suppress(OSError):
        os.unlink(temp)
    return True


# What link(2) answers on file systems that have no hard links (FAT, some FUSE and network mounts).
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def _same_digest(path: Path, sha256: str) -> bool:
    """Whether the file at ``path`` has the digest ``sha256`` (False when it cannot be read)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as source:
            while block := source.read(2**20):
                digest.update(block)
    except OSError:
        return False
    return digest.hexdigest() == sha256


def file_mode() -> int:
    """The mode of a stored file: 0666 less the process's umask (as ``open()`` would create it)."""
    return 0o666 & ~_umask()


def _umask() -> int:
    # Linux shows the umask in /proc without changing it; os.umask() can only be read by setting it,
    # which for a moment changes it for every thread of the process.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o077)
    os.umask(current)
    return current


def _remove_stale(directory: Path, prefix: str, stale_after: float) -> None:
    """Delete the leftovers of writers killed mid-write (SIGKILL, OOM): only files untouched for ``stale_after``."""
    cutoff = time.time() - stale_after
    # A scan with plain string tests: a glob compiles a pattern of its own for each (unique) prefix,
    # which cost more than the scan itself for every small file written.
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(prefix) and entry.name.endswith(".part"):
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                        os.unlink(entry.path)
