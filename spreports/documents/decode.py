"""Turning downloaded bytes into stored bytes: gunzip by content, charset resolution, UTF-8 transcoding.

Both stages work on large chunks (a mebibyte or more) and hold no per-line state, so the work per
chunk is one call into C (ISA-L or zlib, a codec) and the Python overhead is negligible.

Corrupt versus truncated gzip: a stream that simply *ends* before its last member is complete is a
:class:`~spreports.errors.IncompleteDownload` (transient): a cut connection, a proxy or a server fault
can produce it and a fresh attempt may well succeed. A stream whose bytes are *wrong* (a bad deflate
block, a CRC or ISIZE mismatch, garbage after a member) is a
:class:`~spreports.errors.DocumentRejected` (permanent): the body travelled over TLS, so the bytes
we received are the bytes the server holds, and fetching them again would spend the scarce
getReportDocument quota to read the same corrupt object. Neither is ever stored.
"""

from __future__ import annotations

import codecs
import functools
import threading
import zlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

from spreports.errors import DocumentRejected, IncompleteDownload

_inflate_module: ModuleType
try:  # ISA-L is several times faster than zlib at inflating; zlib is the fallback.
    from isal import isal_zlib

    _inflate_module = isal_zlib
    INFLATE_BACKEND = "isal"
    # isal's stubs declare its error class as an instance; it is a class at run time.
    _INFLATE_ERRORS: tuple[type[Exception], ...] = (isal_zlib.error, zlib.error)  # type: ignore[assignment]
except ImportError:  # pragma: no cover - isal is a dependency; this only guards odd platforms
    _inflate_module = zlib
    INFLATE_BACKEND = "zlib"
    _INFLATE_ERRORS = (zlib.error,)

GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + 15
# Most output one inflate call may produce: bounds memory (and reacts to a bomb) within one input chunk.
MAX_INFLATE_OUTPUT = 1 * 2**20

# Charset labels Amazon uses (Content-Type of the download) mapped to Python codecs.
# Shift_JIS maps to cp932: Amazon's Japanese documents are written by Windows-31J software and carry
# NEC/IBM extension characters (circled digits, company marks) that strict Shift_JIS cannot decode;
# cp932 decodes every byte sequence Shift_JIS does, so nothing is lost by choosing the superset.
_CHARSET_ALIASES = {
    "cp1252": "cp1252",
    "windows-1252": "cp1252",
    "x-cp1252": "cp1252",
    "windows-31j": "cp932",
    "ms932": "cp932",
    "cp932": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    # utf-8-sig strips a leading byte order mark and otherwise is UTF-8.
    "utf-8": "utf-8-sig",
    "utf8": "utf-8-sig",
}

# Codecs Python accepts by name that are not character sets of text documents: storing their output
# as UTF-8 text is meaningless, and some of them expand a tiny body without bound (bz2, zlib).
_NOT_CHARSETS = {"unicode-escape", "raw-unicode-escape", "idna", "punycode", "undefined", "charmap"}

_TEXT_TYPES = {"application/json", "application/xml", "application/csv", "application/x-tab-separated-values"}
_EXTENSIONS = {
    "text/plain": "txt",
    "text/tab-separated-values": "tsv",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/json": "json",
    "application/xml": "xml",
    "text/xml": "xml",
    "application/pdf": "pdf",
    "application/zip": "zip",
}


class ContentType:
    """The parsed ``Content-Type`` of a download: media type, charset label and what follows from them."""

    def __init__(self, header: str | None) -> None:
        parts = (header or "").split(";")
        self.media_type = parts[0].strip().lower() or "application/octet-stream"
        self.charset_label: str | None = None
        for param in parts[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset" and value.strip():
                self.charset_label = value.strip().strip('"').strip()

    @property
    def is_text(self) -> bool:
        """True for text documents (a text media type, or any type that declares a charset)."""
        return self.media_type.startswith("text/") or self.media_type in _TEXT_TYPES or self.charset_label is not None

    @property
    def codec(self) -> str | None:
        """The Python codec for the declared charset; None when none is declared.

        Raises DocumentRejected for a charset Python does not know, and for a codec that is no character
        set (``base64``, ``bz2``, ``rot13``, ``unicode_escape``...): such a label is never text to store.
        """
        if self.charset_label is None:
            return None
        label = self.charset_label.lower()
        if label in _CHARSET_ALIASES:
            return _CHARSET_ALIASES[label]
        shown = repr(self.charset_label[:40])
        try:
            info = codecs.lookup(label)
        except LookupError:
            raise DocumentRejected(f"the document declares an unknown charset {shown}") from None
        # Binary and text-to-text transforms are registered as codecs too; Python marks them non-text.
        if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
            raise DocumentRejected(f"the document declares {shown} as its charset, which is not a text encoding")
        return "utf-8-sig" if info.name == "utf-8" else info.name

    def extension(self) -> str:
        """A file extension for the stored document."""
        return _EXTENSIONS.get(self.media_type, "txt" if self.is_text else "bin")


class Gunzip:
    """Decompress by content: gzip bytes (one or many members) are inflated, anything else passes through.

    The first bytes decide, not the ``compressionAlgorithm`` label nor ``Content-Encoding``: Amazon has
    served plain bodies labelled GZIP, and with ``enableContentEncodingUrlHeader`` the gzip body arrives
    with ``Content-Encoding: gzip``. The caller reads the raw (undecoded) body, so this is the one and
    only place bytes are inflated.
    """

    def __init__(self, max_output: int) -> None:
        self.max_output = max_output
        self.detected: str | None = None  # "gzip" or "none", once the first bytes are seen
        self.members = 0
        self.bytes_out = 0
        self._head = b""
        self._inflater: Any = None
        self._pending = b""  # bytes after a member's end that may start the next member
        self._padded = False  # zero bytes followed the last member: nothing else may come

    def feed(self, data: bytes, emit: Callable[[bytes], None]) -> None:
        """Decompress ``data`` (any length) and pass every output block to ``emit``."""
        if self.detected is None:
            self._head += data
            if len(self._head) < len(GZIP_MAGIC):
                return
            data, self._head = self._head, b""
            self.detected = "gzip" if data.startswith(GZIP_MAGIC) else "none"
        if self.detected == "none":
            self._count(len(data))
            emit(data)
            return
        self._inflate(data, emit)

    def finish(self, emit: Callable[[bytes], None]) -> None:
        """The body ended: flush, and fail unless the last gzip member was complete."""
        if self.detected is None:  # bodies of 0 or 1 byte cannot be gzip
            self.detected = "none"
            if self._head:
                self._count(len(self._head))
                emit(self._head)
            return
        if self.detected != "gzip":
            return
        if self._inflater is not None or self._pending == GZIP_MAGIC[:1]:
            raise IncompleteDownload(f"the gzip stream ended early (member {self.members + 1} is incomplete)")
        if self._pending:
            self._trailing(self._pending)

    def _inflate(self, data: bytes, emit: Callable[[bytes], None]) -> None:
        while data:
            if self._inflater is None:
                data = self._pending + data
                self._pending = b""
                if self._padded or not data.startswith(GZIP_MAGIC[: len(data)]):
                    self._trailing(data)
                    return
                if len(data) < len(GZIP_MAGIC):
                    self._pending = data
                    return
                self._inflater = _inflate_module.decompressobj(_GZIP_WBITS)
            inflater = self._inflater
            try:
                out = inflater.decompress(data, MAX_INFLATE_OUTPUT)
                self._count(len(out))
                emit(out)
                while inflater.unconsumed_tail:
                    out = inflater.decompress(inflater.unconsumed_tail, MAX_INFLATE_OUTPUT)
                    self._count(len(out))
                    emit(out)
            except _INFLATE_ERRORS as exc:
                raise DocumentRejected(
                    f"the gzip stream is corrupt in member {self.members + 1} ({_describe(exc)})"
                ) from None
            if not inflater.eof:
                return
            self.members += 1
            data = inflater.unused_data
            self._inflater = None

    def _trailing(self, data: bytes) -> None:
        # What follows the last member and cannot start another: zero bytes are padding (as gzip(1)
        # ignores them), anything else is garbage whatever its length, and no retry can mend it.
        if data.strip(b"\0"):
            raise DocumentRejected(f"the gzip stream has bytes of garbage after member {self.members}")
        self._padded = True

    def _count(self, size: int) -> None:
        self.bytes_out += size
        if self.bytes_out > self.max_output:
            raise DocumentRejected(
                f"the document decompresses to more than {self.max_output} bytes "
                "(SPREPORTS_DOCUMENTS__MAX_DECOMPRESSED_BYTES); refusing a possible decompression bomb"
            )


def _describe(exc: Exception) -> str:
    text = str(exc)
    return text.split(":", 1)[-1].strip() if "while decompressing" in text else text


_replacements = threading.local()


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _replacements.count = getattr(_replacements, "count", 0) + 1
    return "\ufffd", exc.end


COUNTING_ERRORS = "spreports-count"


@functools.cache
def _register_counting_errors() -> None:
    # One replacement character per undecodable sequence, counted per thread (each transcoder runs in
    # one). Registered on first use: importing this module changes nothing in the process.
    codecs.register_error(COUNTING_ERRORS, _count_and_replace)


class Transcoder:
    """Decode text in ``codec`` incrementally and encode it as UTF-8; count or refuse undecodable bytes."""

    def __init__(self, codec: str, *, strict: bool) -> None:
        self.codec = codec
        self.strict = strict
        if not strict:
            _register_counting_errors()
        self._decoder = codecs.getincrementaldecoder(codec)("strict" if strict else COUNTING_ERRORS)
        self._offset = 0
        self.replaced = 0

    def feed(self, data: bytes, final: bool = False) -> bytes:
        """Transcode one chunk; ``final`` flushes (an incomplete trailing sequence is then an error)."""
        before = getattr(_replacements, "count", 0)
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            raise DocumentRejected(
                f"undecodable {self.codec} bytes near offset {self._offset + max(exc.start, 0)} of the "
                "decompressed document (SPREPORTS_DOCUMENTS__STRICT_DECODING is on)"
            ) from None
        except UnicodeError as exc:
            # Not a byte-level error but the stream as a whole, e.g. UTF-16 without its byte order mark.
            raise DocumentRejected(f"the document is not valid {self.codec}: {str(exc)[:120]}") from None
        finally:
            self.replaced += getattr(_replacements, "count", 0) - before
        self._offset += len(data)
        return text.encode("utf-8")
