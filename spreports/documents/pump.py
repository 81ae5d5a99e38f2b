"""Moving bytes through the stages on three threads with small bounded queues.

reader thread (the source: socket reads and inflating, GIL released)  ->  caller's thread (transcoding,
which holds the GIL)  ->  writer thread (sha256, os.write or S3 upload: GIL released). ISA-L, zlib,
hashlib and os.write release the GIL on large buffers, so two cores overlap the three stages. The queues
hold a few chunks, so memory stays flat whatever the size of the document.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

QUEUE_DEPTH = 3
_END = object()
_POLL = 0.2


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@functools.cache
def keep_freed_blocks() -> bool:
    """Ask glibc to reuse freed multi-MiB blocks instead of returning them to the kernel at once.

    By default every block above the mmap threshold is a fresh mapping: each block of every stage is
    page-faulted in and zeroed by the kernel again, which cost about a third of the transcoding time
    in ``benchmarks/retrieval.py``. Keeping them costs nothing extra: the queues bound how many blocks
    live at once, so the peak (and flat) RSS is unchanged. Process-wide, once; a no-op off glibc.
    Called by :func:`spreports.documents.prepare_process` when a retrieving process starts.

    One malloc arena for the process: every document starts new reader and writer threads, and glibc
    gives threads arenas of their own (up to eight per core), each keeping its freed blocks, so from one
    document to the next the stages land on other arenas and the blocks kept add up (15 to 20 MiB more
    after a few documents). In one arena every stage reuses the same freed blocks; the threads allocate
    while holding the GIL anyway, so they contend no more than they already do.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return (
        bool(mallopt(_M_MMAP_THRESHOLD, 64 * 2**20))
        and bool(mallopt(_M_TRIM_THRESHOLD, 128 * 2**20))
        and bool(mallopt(_M_ARENA_MAX, 1))
    )


class Cancelled(Exception):
    """The other side of a queue stopped; used only inside this module."""


class _Channel:
    """A bounded queue whose blocking ends as soon as ``cancel`` is set."""

    def __init__(self, cancel: threading.Event) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._cancel = cancel

    def put(self, item: Any) -> None:
        while True:
            if self._cancel.is_set():
                raise Cancelled
            try:
                self._queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                continue

    def get(self) -> Any:
        while True:
            if self._cancel.is_set():
                raise Cancelled
            try:
                return self._queue.get(timeout=_POLL)
            except queue.Empty:
                continue


class Pump:
    """Run ``source`` on a reader thread and ``sink`` on a writer thread around the caller's transform.

    Use :meth:`chunks` to receive the source's chunks, :meth:`emit` to hand transformed bytes to the
    writer, then :meth:`finish`. Any stage's exception cancels the others and is re-raised in the
    caller's thread; :meth:`close` (always call it) stops and joins both threads.
    """

    def __init__(self, source: Iterator[bytes], sink: Callable[[bytes], None]) -> None:
        self._cancel = threading.Event()
        self._incoming = _Channel(self._cancel)
        self._outgoing = _Channel(self._cancel)
        self._error: BaseException | None = None
        self._source = source
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.bytes_out = 0
        self._reader = threading.Thread(target=self._read, name="spreports-reader", daemon=True)
        self._writer = threading.Thread(target=self._write, name="spreports-writer", daemon=True)
        self._reader.start()
        self._writer.start()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self._cancel.set()

    def _read(self) -> None:
        try:
            for chunk in self._source:
                self._incoming.put(chunk)
            self._incoming.put(_END)
        except Cancelled:
            pass
        except BaseException as exc:
            self._fail(exc)

    def _write(self) -> None:
        try:
            while (block := self._outgoing.get()) is not _END:
                self.sha256.update(block)
                self._sink(block)
                self.bytes_out += len(block)
        except Cancelled:
            pass
        except BaseException as exc:
            self._fail(exc)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def chunks(self) -> Iterator[bytes]:
        """The source's chunks, in order, until it ends."""
        while True:
            try:
                chunk = self._incoming.get()
            except Cancelled:
                self._raise_error()
                raise
            if chunk is _END:
                return
            yield chunk

    def emit(self, block: bytes) -> None:
        """Hand bytes to the writer thread (empty blocks are skipped)."""
        if not block:
            return
        try:
            self._outgoing.put(block)
        except Cancelled:
            self._raise_error()
            raise

    def write_here(self, block: bytes) -> None:
        """Hash and write on the caller's thread, skipping the writer thread (when nothing is transformed,
        a hop between threads costs more than it overlaps). Do not mix with :meth:`emit`."""
        self.sha256.update(block)
        self._sink(block)
        self.bytes_out += len(block)

    def finish(self) -> None:
        """Wait until the writer has written everything; raise its error if it failed."""
        try:
            self._outgoing.put(_END)
        except Cancelled:
            self._raise_error()
            raise
        self._writer.join()
        self._raise_error()

    def close(self) -> None:
        """Stop both threads (after success or failure) and wait for them.

        A reader blocked in a socket read ends when the socket is shut down (the caller's job, see
        :func:`spreports.documents.fetch.cut_off`), else at the read timeout; it is a daemon thread and
        not waited for long.
        """
        self._cancel.set()
        self._writer.join(timeout=30)
        self._reader.join(timeout=1)


class InlinePump:
    """:class:`Pump`'s interface with every stage on the caller's thread.

    For a body that arrives in one read (a small document, most of a fleet's): starting two threads and
    handing its one block across them costs more CPU than overlapping the stages could save.
    """

    def __init__(self, source: Iterator[bytes], sink: Callable[[bytes], None]) -> None:
        self._source = source
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.bytes_out = 0

    def chunks(self) -> Iterator[bytes]:
        """The source's chunks, in order, until it ends."""
        yield from self._source

    def emit(self, block: bytes) -> None:
        """Hash and write ``block`` (empty blocks are skipped)."""
        if block:
            self.write_here(block)

    def write_here(self, block: bytes) -> None:
        """Hash and write ``block``."""
        self.sha256.update(block)
        self._sink(block)
        self.bytes_out += len(block)

    def finish(self) -> None:
        """Nothing is pending: every block was written as it was emitted."""

    def close(self) -> None:
        """No thread to stop."""
