"""Only text encodings are charsets: a codec that is a transform (bz2, base64, rot13...) is refused at once."""

from __future__ import annotations

import pytest

from spreports.documents import ContentType, Transcoder
from spreports.errors import DocumentRejected


@pytest.mark.parametrize(
    "label", ["bz2", "zlib", "base64", "uu", "hex", "rot13", "quopri", "unicode_escape", "idna", "punycode"]
)
def test_codecs_that_are_not_charsets_are_refused(label: str) -> None:
    content_type = ContentType(f"text/plain; charset={label}")
    with pytest.raises(DocumentRejected, match="not a text encoding"):
        _ = content_type.codec


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        ("Cp1252", "cp1252"),
        ("Shift_JIS", "cp932"),
        ("UTF-8", "utf-8-sig"),
        ("UTF-16", "utf-16"),
        ("latin1", "iso8859-1"),
    ],
)
def test_text_encodings_are_charsets(label: str, codec: str) -> None:
    assert ContentType(f"text/tab-separated-values;charset={label}").codec == codec


@pytest.mark.parametrize("strict", [True, False])
def test_utf16_with_its_byte_order_mark_is_transcoded(strict: bool) -> None:
    body = "sku\tprice\nÄ-1\t9,99\n".encode("utf-16")
    transcoder = Transcoder("utf-16", strict=strict)
    out = b"".join(transcoder.feed(body[i : i + 5]) for i in range(0, len(body), 5)) + transcoder.feed(b"", final=True)
    assert out.decode("utf-8") == "sku\tprice\nÄ-1\t9,99\n" and transcoder.replaced == 0


@pytest.mark.parametrize("strict", [True, False])
def test_utf16_without_its_byte_order_mark_is_a_clear_refusal(strict: bool) -> None:
    transcoder = Transcoder("utf-16", strict=strict)
    with pytest.raises(DocumentRejected, match="not valid utf-16"):
        transcoder.feed(b"ab\x00cd\x00", final=True)


def test_unknown_charsets_are_refused() -> None:
    with pytest.raises(DocumentRejected, match="unknown charset 'x-klingon'"):
        _ = ContentType("text/plain; charset=x-klingon").codec
