"""The two pumps move the same bytes: threads for a large body, the caller's thread alone for a small one."""

from __future__ import annotations

import hashlib
import threading

import pytest

from spreports.documents.pump import InlinePump, Pump


@pytest.mark.parametrize("kind", [Pump, InlinePump])
def test_both_pumps_hash_and_write_every_transformed_byte_in_order(kind: type[Pump | InlinePump]) -> None:
    chunks = [b"abc", b"", b"defg", b"h" * 5000]
    written: list[bytes] = []
    pump = kind(iter(chunks), written.append)
    try:
        for chunk in pump.chunks():
            pump.emit(chunk.upper())
        pump.finish()
    finally:
        pump.close()
    expected = b"".join(chunks).upper()
    assert b"".join(written) == expected and b"" not in written
    assert pump.bytes_out == len(expected) and pump.sha256.hexdigest() == hashlib.sha256(expected).hexdigest()


def test_the_inline_pump_starts_no_thread_and_raises_the_sinks_error_in_place() -> None:
    before = threading.active_count()

    def full_disk(block: bytes) -> None:
        raise OSError(28, "No space left on device")

    pump = InlinePump(iter([b"abc"]), full_disk)
    with pytest.raises(OSError, match="No space"):
        for chunk in pump.chunks():
            assert threading.active_count() == before
            pump.emit(chunk)
