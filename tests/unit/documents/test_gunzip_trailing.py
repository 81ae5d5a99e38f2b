"""What follows a gzip stream's last member is judged by what it is, never by its length."""

from __future__ import annotations

import gzip

import pytest

from spreports.documents import Gunzip
from spreports.errors import DocumentRejected, IncompleteDownload

BODY = gzip.compress(b"sku\tprice\nA-1\t9.99\n" * 100)


def inflate(data: bytes, chunk: int = 7) -> bytes:
    out: list[bytes] = []
    gunzip = Gunzip(max_output=2**30)
    for start in range(0, len(data), chunk):
        gunzip.feed(data[start : start + chunk], out.append)
    gunzip.finish(out.append)
    return b"".join(out)


@pytest.mark.parametrize("garbage", [b"x", b"xy", b"\n", b"\r\n", b"garbage after the end", b"\x00\x00x"])
def test_garbage_after_the_last_member_is_refused_for_good_whatever_its_length(garbage: bytes) -> None:
    with pytest.raises(DocumentRejected, match="garbage after member 1"):
        inflate(BODY + garbage)


@pytest.mark.parametrize("padding", [b"\x00", b"\x00\x00", b"\x00" * 1000])
def test_zero_padding_after_the_last_member_is_ignored(padding: bytes) -> None:
    assert inflate(BODY + padding) == gzip.decompress(BODY)


@pytest.mark.parametrize("start", [b"\x1f", b"\x1f\x8b", b"\x1f\x8b\x08\x00"])
def test_a_member_cut_after_its_first_bytes_is_an_incomplete_download(start: bytes) -> None:
    with pytest.raises(IncompleteDownload, match="member 2 is incomplete"):
        inflate(BODY + start)


def test_members_follow_one_another() -> None:
    assert inflate(BODY + BODY, chunk=3) == gzip.decompress(BODY) * 2
