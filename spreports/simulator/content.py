"""Report documents as streams: any size, plain or GZIP, never held in memory.

A document is ``prefix + block * n + tail + suffix`` where ``block`` is a precomputed run of encoded rows
and ``tail`` its longest prefix of whole rows that still fits. The gzip form compresses each distinct
piece once, as independent deflate blocks ended by a full flush, so the compressed stream is the same
pieces repeated: both forms stream at memory speed and both lengths (and the CRC-32) are known before
the first byte is sent.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from spreports.report_types import RESTRICTED_REPORT_TYPES
from spreports.simulator.declared import DEFAULT_MALFORMED_RATE
from spreports.simulator.formats import CODECS, build_format, default_charset

BLOCK_TARGET = 256 * 1024
Mislabel = Literal["none", "gzip_declared_plain", "plain_declared_gzip"]


@dataclass(frozen=True)
class DocumentSpec:
    """What a document holds and how it is served.

    - ``report_type``: picks the layout (flat-file listings/orders with their header row, XML browse tree, JSON).
    - ``size``: upper bound of the uncompressed bytes; the document is the header plus whole rows up to it
      (never less than header + footer). ``0`` makes an empty document.
    - ``gzip``: stored GZIP (``compressionAlgorithm: GZIP``) or plain.
    - ``charset``: the Content-Type charset label (``UTF-8``, ``Cp1252``, ``windows-31j``, ``Shift_JIS``);
      ``None`` picks Amazon's usual one for the type and marketplace. ``bom`` prefixes a UTF-8 BOM.
    - ``mislabel``: serve plain bytes while declaring GZIP, or the reverse.
    - ``algorithm``: the ``compressionAlgorithm`` getReportDocument declares instead of the usual one (``GZIP``
      for a gzip document, none for a plain one): a value the model does not list yet (its enum may grow).
    - ``restricted``: getReportDocument demands a Restricted Data Token; ``None`` follows the report type.
    - ``seed``: varies the rows.
    - ``text``: the document is exactly this text in UTF-8 (JSON; the error document of a FATAL report).
    - ``malformed_rate``: the share of malformed records in a type with a declared schema (a line with a
      field too few or too many, a value that is no value of its type); 0 for none.
    """

    report_type: str = "GET_MERCHANT_LISTINGS_ALL_DATA"
    size: int = 64 * 1024
    gzip: bool = True
    charset: str | None = None
    bom: bool = False
    mislabel: Mislabel = "none"
    restricted: bool | None = None
    seed: int = 0
    text: str | None = None
    algorithm: str | None = None
    malformed_rate: float = DEFAULT_MALFORMED_RATE

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ValueError("size must be >= 0")
        if self.charset is not None and self.charset not in CODECS:
            raise ValueError(f"charset must be one of {', '.join(CODECS)}")
        if self.bom and self.charset not in (None, "UTF-8"):
            raise ValueError("a BOM goes with UTF-8 only")
        if not 0 <= self.malformed_rate <= 1:
            raise ValueError("malformed_rate must be between 0 and 1")
        if self.mislabel not in ("none", "gzip_declared_plain", "plain_declared_gzip"):
            raise ValueError("mislabel must be none, gzip_declared_plain or plain_declared_gzip")

    @property
    def is_restricted(self) -> bool:
        """Whether getReportDocument needs a Restricted Data Token."""
        return self.report_type in RESTRICTED_REPORT_TYPES if self.restricted is None else self.restricted


class DocumentBody:
    """The bytes of one document, computed lazily as repeated pieces."""

    def __init__(self, spec: DocumentSpec, marketplace_ids: tuple[str, ...] = ("ATVPDKIKX0DER",)) -> None:
        self.spec = spec
        self._gzip: tuple[list[tuple[bytes, int]], int] | None = None
        if spec.text is not None:
            self.charset, self.content_type = "UTF-8", "application/json; charset=UTF-8"
            self.pieces = [(spec.text.encode("utf-8"), 1)]
            self.length = len(self.pieces[0][0])
            return
        self.charset = spec.charset or ("UTF-8" if spec.bom else default_charset(spec.report_type, marketplace_ids))
        codec = CODECS[self.charset]
        layout = build_format(spec.report_type, self.charset, spec.seed, marketplace_ids[0], spec.malformed_rate)
        self.content_type = f"{layout.media_type}; charset={self.charset}"
        self.pieces = _plan(
            ("\ufeff" if spec.bom else "").encode("utf-8") + layout.prefix.encode(codec),
            [row.encode(codec) for row in layout.rows],
            layout.suffix.encode(codec),
            spec.size,
        )
        self.length = sum(len(piece) * times for piece, times in self.pieces)

    def iter_plain(self) -> Iterator[bytes]:
        """The uncompressed document, chunk by chunk."""
        for piece, times in self.pieces:
            for _ in range(times):
                yield piece

    def _gzip_plan(self) -> tuple[list[tuple[bytes, int]], int]:
        if self._gzip is None:
            crc = 0
            parts: list[tuple[bytes, int]] = [(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 1)]
            for piece, times in self.pieces:
                deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
                parts.append((deflater.compress(piece) + deflater.flush(zlib.Z_FULL_FLUSH), times))
                crc = crc32_combine(crc, crc32_repeat(zlib.crc32(piece), len(piece), times), len(piece) * times)
            parts.append((zlib.compressobj(6, zlib.DEFLATED, -15).flush(zlib.Z_FINISH), 1))
            parts.append((struct.pack("<II", crc, self.length & 0xFFFFFFFF), 1))
            self._gzip = (parts, sum(len(p) * t for p, t in parts))
        return self._gzip

    @property
    def gzip_length(self) -> int:
        """Length of the gzip form."""
        return self._gzip_plan()[1]

    def iter_gzip(self) -> Iterator[bytes]:
        """The gzip form (RFC 1952, one member), chunk by chunk."""
        for piece, times in self._gzip_plan()[0]:
            for _ in range(times):
                yield piece


def _plan(prefix: bytes, rows: list[bytes], suffix: bytes, size: int) -> list[tuple[bytes, int]]:
    if size == 0:
        return []
    block_rows: list[bytes] = []
    while sum(map(len, block_rows)) < BLOCK_TARGET:
        block_rows.extend(rows)
    block = b"".join(block_rows)
    budget = max(0, size - len(prefix) - len(suffix))
    count, rest = divmod(budget, len(block))
    tail = bytearray()
    for row in block_rows:
        if len(tail) + len(row) > rest:
            break
        tail += row
    pieces = [(prefix, 1), (block, count), (bytes(tail), 1), (suffix, 1)]
    return [(piece, times) for piece, times in pieces if piece and times]


def take(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    """The first ``limit`` bytes of a chunk stream."""
    for chunk in chunks:
        if limit <= 0:
            return
        yield chunk[:limit]
        limit -= len(chunk)


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, row = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[row]
        vector >>= 1
        row += 1
    return total


def _gf2_square(matrix: list[int]) -> list[int]:
    return [_gf2_times(matrix, matrix[n]) for n in range(32)]


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B): shift crc1 through len2 zero bytes in GF(2), then xor."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # the operator for one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while True:
        even = _gf2_square(odd)
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def crc32_repeat(crc: int, length: int, times: int) -> int:
    """CRC-32 of a piece repeated ``times`` times, by doubling (log2(times) combines)."""
    result, power_crc, power_len = 0, crc, length
    while times:
        if times & 1:
            result = crc32_combine(result, power_crc, power_len)
        times >>= 1
        if times:
            power_crc, power_len = crc32_combine(power_crc, power_crc, power_len), power_len * 2
    return result
